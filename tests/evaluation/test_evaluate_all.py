"""evaluate_all on every benchmark fixture with the untrained smoke model: one JSON, six entries."""
import json
import subprocess
import sys

import pytest

from logoseg.datasets.benchmarks import DATA_ROOT_HINT
from logoseg.tools.evaluate_all import BENCHMARKS, evaluate_all, parse_args
from logoseg.utils.errors import LoGoSegUserError

from .conftest import SMOKE, SMOKE_TEST_PIPELINE

KEYS = {'mIoU', 'aAcc', 'mAcc', 'hallucination_rate', 'hallucinated_classes', 'num_images'}


def test_writes_json_for_all_six(prepared_root, smoke_checkpoint, tmp_path):
    out = tmp_path / 'metrics.json'
    options = {'test_dataloader.dataset.data_root': str(prepared_root),
               'test_dataloader.dataset.pipeline': SMOKE_TEST_PIPELINE,
               'visualizer.vis_backends': [dict(type='LocalVisBackend')]}
    returned = evaluate_all(SMOKE, smoke_checkpoint, str(out), work_dir=str(tmp_path),
                            cfg_options=options)
    results = json.loads(out.read_text())
    assert results == returned
    assert list(results) == list(BENCHMARKS)
    for benchmark, metrics in results.items():
        assert set(metrics) == KEYS, benchmark
        assert metrics['num_images'] == 3
        assert 0 <= metrics['mIoU'] <= 100 and 0 <= metrics['aAcc'] <= 100
        assert 0 <= metrics['hallucination_rate'] <= 1
        assert metrics['hallucinated_classes'] >= metrics['hallucination_rate']  # count >= 1 where any
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1  # one Runner serves the six benchmarks


def test_command_line():
    args = parse_args(['configs/logoseg_vitl.py', 'ckpt.pth', '--out', 'm.json', '--benchmarks', 'ade150',
                       'voc20b', '--skip-missing', '--cfg-options', 'test_dataloader.num_workers=0'])
    assert args.benchmarks == ['ade150', 'voc20b'] and args.skip_missing
    assert args.cfg_options == {'test_dataloader.num_workers': 0}
    assert parse_args(['c.py', 'k.pth', '--out', 'm.json']).benchmarks == list(BENCHMARKS)


def test_a_name_that_is_neither_a_benchmark_nor_a_declared_dataset_is_one_line_listing_both(tmp_path):
    with pytest.raises(LoGoSegUserError) as error:
        evaluate_all(SMOKE, str(tmp_path / 'missing.pth'), str(tmp_path / 'm.json'), ('ade150', 'ade20k'))
    message = str(error.value)
    assert message.startswith("unknown benchmark or dataset 'ade20k'") and '\n' not in message
    assert ', '.join(BENCHMARKS) in message and 'declared in params.yaml: standin' in message
    assert not (tmp_path / 'm.json').exists()


def test_cli_missing_data_is_one_line(smoke_checkpoint, tmp_path):
    """As a user runs it (no pytest scope set up): exit 1 and the one-line dataset error, no traceback."""
    proc = subprocess.run(
        [sys.executable, '-m', 'logoseg.tools.evaluate_all', SMOKE, smoke_checkpoint, '--out', 'm.json',
         '--benchmarks', 'voc20b'], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'logoseg: error: dataset not found at {tmp_path}/prepared/voc20b/val; '
        'prepare it with `dvc repro prepare_voc20b` (docs/datasets.md)' + DATA_ROOT_HINT)
    assert 'Traceback' not in proc.stderr and not (tmp_path / 'm.json').exists()
