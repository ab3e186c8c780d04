import json
import subprocess
import sys

from ..conftest import REPO, SMOKE_CONFIG


def test_benchmark_prints_and_writes_figures_for_a_config(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, '-m', 'logoseg.tools.benchmark', str(SMOKE_CONFIG), '--device', 'cpu',
                           '--repeats', '1', '--classes', '7', '--out', str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    (row,) = figures['models']
    assert row['input'] == '64x64' and row['classes'] == 7
    assert 0 < row['trainable_m'] < row['params_m']  # the frozen text tower counts in total only
    assert row['forward_ms'] > 0 and row['clip_encoder_ms'] > 0 and row['peak_mem_mb'] > 0
    assert row['head_overhead'] == row['forward_ms'] / row['clip_encoder_ms']
    assert [s['backend'] for s in figures['selective_scan']] == ['torch']
    assert 'logoseg_smoke.py' in proc.stdout and 'selective scan [torch]' in proc.stdout
