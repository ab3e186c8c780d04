"""The benchmark tool end to end on the smoke model, and the previous scan it compares against."""
import csv
import json
import subprocess
import sys

import torch

from logoseg.models.selective_scan import selective_scan_torch
from logoseg.utils import measurements
from logoseg.tools.benchmark import benchmark_config, previous_selective_scan, scan_inputs

from ..conftest import REPO, SMOKE_CONFIG


def test_benchmark_prints_and_writes_figures_for_a_config(tmp_path):
    out, record = tmp_path / 'bench.json', tmp_path / 'benchmarks' / 'speed.csv'
    record.parent.mkdir()
    record.write_text(','.join(measurements.COLUMNS) + '\n2026-01-01,' + ','.join(['x'] * 9) + '\n')
    proc = subprocess.run([sys.executable, '-m', 'logoseg.tools.benchmark', str(SMOKE_CONFIG), '--device', 'cpu',
                           '--repeats', '1', '--threads', '1', '--classes', '4', '9', '--image-size', '96',
                           '--train-batches', '2', '--scan-shape', '8', '4', '50', '--out', str(out),
                           '--record', str(record)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    # --record: the same figures as CSV rows with the machine and date, appended to a file kept in git
    with open(record, newline='') as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == measurements.COLUMNS and rows[0]['date'] == '2026-01-01'  # kept: appended below
    rows = rows[1:]
    assert all(r['machine'] == measurements.machine() and r['device'] == 'cpu' and r['threads'] == '1' for r in rows)
    by_quantity = {(r['section'], r['quantity']): r for r in rows}
    crop = by_quantity['models', 'crop_overhead']
    assert crop['config'] == 'logoseg_smoke.py' and 'crop=64x64' in crop['setting']
    assert float(crop['value']) == figures['models'][0]['crop_overhead']
    assert float(by_quantity['train', 'step_ms']['value']) == figures['train'][0]['step_ms']
    assert 'batch=2' in by_quantity['train', 'step_ms']['setting']
    assert float(by_quantity['selective_scan', 'ratios.forward_vs_cumsum']['value']) == \
        figures['selective_scan']['ratios']['forward_vs_cumsum']
    assert f'appended {len(rows)} figures to {record}' in proc.stdout
    assert figures['threads'] == 1
    (row,) = figures['models']
    assert row['crop'] == '64x64' and row['eval_image'] == '96x96' and row['eval_mode'] == 'whole'
    assert row['eval_views'] == ['96x96']  # the smoke config tests whole images: one view, as fed to the encoder
    assert 0 < row['trainable_m'] < row['params_m']  # the frozen text tower counts in total only
    assert row['crop_overhead'] == row['crop_forward_ms'] / row['crop_encoder_ms']
    assert row['eval_overhead'] == row['eval_ms'] / row['eval_encoder_ms']
    assert (row['eval_classes'], row['large_classes']) == (4, 9)
    assert row['large_vocab_ratio'] == row['large_eval_ms'] / row['eval_ms']
    (step,) = figures['train']
    assert step['batch'] == 2 and step['step_ms'] > 0 and step['peak_mb'] >= step['step_memory_mb'] > 0
    scan = figures['selective_scan']
    assert scan['shape'] == 'Dch 8 N 4 L 50'
    fwd = scan['forward_b1_ms']
    assert set(fwd) == {'cumsum', 'cumsum_warm', 'exp_warm', 'current', 'previous'}  # no CUDA kernel on a CPU
    assert scan['ratios']['forward_vs_cumsum'] == fwd['current'] / fwd['cumsum']
    assert scan['ratios']['forward_vs_warm_cumsum'] == fwd['current'] / fwd['cumsum_warm']
    assert set(scan['forward_backward_b4_peak_mb']) == {'current', 'previous'}
    for text in ('logoseg_smoke.py', 'selective scan (Dch 8 N 4 L 50)', 'current / cumsum', 'threads: 1'):
        assert text in proc.stdout


def test_prior_top_k_is_timed_beside_the_large_vocabulary_in_slide_global_configs():
    config = str(REPO / 'configs' / 'smoke' / 'logoseg_vitb.py')  # slide_global, as the paper's ViT configs
    row = benchmark_config(config, 'cpu', None, 1, 48, (4, 9), prior_top_k=3)
    assert row['eval_mode'] == 'slide_global' and len(row['eval_views']) == 5  # 2 x 2 windows + global view
    assert row['prior_top_k'] == 3 and row['large_top_k_ratio'] == row['large_top_k_eval_ms'] / row['eval_ms']
    whole = benchmark_config(str(SMOKE_CONFIG), 'cpu', None, 1, 48, (4, 9), prior_top_k=3)
    assert whole['prior_top_k'] is None and whole['large_top_k_ratio'] is None  # the option needs slide_global


def test_previous_scan_is_the_same_function():
    """The benchmark's speed-ups compare like with like: the previous scan's values and gradients match."""
    inputs = scan_inputs(2, torch.device('cpu'), requires_grad=True, channels=8, d_state=3, length=70)
    weight = torch.randn(2, 8, 70, generator=torch.Generator().manual_seed(3))
    results = []
    for fn in (selective_scan_torch, previous_selective_scan):
        y = fn(**inputs, delta_softplus=True)
        results.append((y, torch.autograd.grad((y * weight).sum(), list(inputs.values()))))
    (y, grads), (y_prev, grads_prev) = results
    torch.testing.assert_close(y, y_prev, atol=1e-5, rtol=1e-5)
    for g, g_prev in zip(grads, grads_prev):
        torch.testing.assert_close(g, g_prev, atol=1e-4, rtol=1e-4)


def test_benchmark_rejects_a_missing_config(tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'logoseg.tools.benchmark', str(tmp_path / 'nope.py'), '--no-scan'],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'logoseg: error: config' in proc.stderr and 'not found' in proc.stderr
    assert 'Traceback' not in proc.stderr
