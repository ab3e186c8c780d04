"""The GPU benchmark's CPU dry run (the same code paths as on a GPU, tiny model) and its wheel-installing wrapper."""
import json
import subprocess

from logoseg.tools import gpu_benchmark

from ..conftest import REPO

WRAPPER = REPO / 'projects' / 'logoseg' / 'tools' / 'gpu_benchmark.sh'


def test_dry_run_reports_every_figure_and_target(tmp_path, capsys):
    out = tmp_path / 'gpu.json'
    assert gpu_benchmark.main(['--dry-run', '--out', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['dry_run'] and report['device'] == 'cpu'
    assert [r['autocast_bf16'] for r in report['inference']] == [False, True]
    for row in report['inference']:
        assert row['ms_per_image'] > 0 and row['eval_encoder_ms'] > 0 and row['eval_views'] == ['64x64']
        assert (row['eval_classes'], row['large_classes']) == (3, 6)
    assert [(r['autocast_bf16'], r['batch']) for r in report['train']] == [(False, 1), (False, 2), (True, 1),
                                                                          (True, 2)]
    step = report['train'][0]
    assert step['schedule_hours'] == step['step_ms'] * 80_000 / 3.6e6  # the 80k schedule, extrapolated
    targets = report['targets']
    assert set(targets) == {'ms_per_image', 'schedule_hours_fp32', 'train_peak_gb_fp32', 'schedule_hours_bf16',
                            'train_peak_gb_bf16'}
    assert targets['ms_per_image']['measured'] == report['inference'][1]['ms_per_image']  # the bf16 row
    assert targets['train_peak_gb_fp32']['met'] == (targets['train_peak_gb_fp32']['measured'] <= 24)
    printed = capsys.readouterr().out
    assert 'targets:' in printed and 'ms_per_image' in printed and str(out) in printed


def test_wrapper_without_wheels_says_where_to_get_them(tmp_path):
    proc = subprocess.run(['bash', str(WRAPPER), '--dry-run'], capture_output=True, text=True, timeout=60,
                          env={'PATH': '/usr/bin:/bin', 'LOGOSEG_WHEELS': str(tmp_path)})
    assert proc.returncode == 2
    assert f'no wheels in {tmp_path}' in proc.stderr and 'docstring' in proc.stderr
