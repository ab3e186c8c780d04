"""Measured figures live in docs/benchmarks/*.csv with their machine and date, not in docstrings or comments."""
import csv
import re

import pytest

from .conftest import REPO

PACKAGE = REPO / 'projects' / 'logoseg'
BENCHMARKS = REPO / 'docs' / 'benchmarks'
# a timing, a speed-up, a calendar date: what a docstring or comment must not hold (targets written `<= 15 ms`
# are requirements, not measurements)
MEASURED = re.compile(r'(?<!<= )\b\d+(\.\d+)?(-\d+(\.\d+)?)? ?(ms|MiB|GiB)\b'
                      r'|\b20\d\d-\d\d-\d\d\b|\d(\.\d+)?x (faster|slower)')


def test_no_timings_or_dates_in_the_package_source():
    hits = []
    for path in sorted(PACKAGE.rglob('*.py')):
        for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
            if re.search(r"""\bf['"]""", line):  # a format string prints a measurement, it is not one
                continue
            if MEASURED.search(line):
                hits.append(f'{path.relative_to(REPO)}:{number}: {line.strip()}')
    assert not hits, ('measured figures or dates in the source; move them to docs/benchmarks/*.csv (machine, '
                      'date) and keep the reason in the text:\n' + '\n'.join(hits))


@pytest.mark.parametrize('name', ['speed.csv', 'design.csv'])
def test_every_recorded_figure_has_a_machine_and_a_date(name):
    with open(BENCHMARKS / name, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        assert re.fullmatch(r'20\d\d-\d\d-\d\d', row['date']) and row['machine'], row
    if name == 'speed.csv':
        from logoseg.utils.measurements import COLUMNS
        assert list(rows[0]) == COLUMNS  # the file the benchmark tool appends to keeps its schema


def test_report_rows_keep_the_setting_beside_each_figure():
    """gpu_benchmark's report shape (inference rows, a config at the top): one row per number, its setting kept."""
    from logoseg.utils.measurements import machine, report_rows
    report = dict(config='configs/logoseg_vitb.py', threads=8, repeats=10, inference=[
        dict(autocast_bf16=True, eval_views=['384x384', '640x640'], eval_classes=150, large_classes=847,
             ms_per_image=12.5, eval_overhead=1.2)],
        train=[dict(config='configs/logoseg_vitb.py', batch=1, autocast_bf16=False, step_ms=90.0, peak_mb=9000)],
        targets=dict(ms_per_image=dict(target=15, measured=12.5, met=True)))
    rows = report_rows(report, 'NVIDIA H200')
    assert {(r['section'], r['quantity']) for r in rows} == {
        ('inference', 'ms_per_image'), ('inference', 'eval_overhead'), ('train', 'step_ms'), ('train', 'peak_mb')}
    inference = next(r for r in rows if r['quantity'] == 'ms_per_image')
    assert inference['config'] == 'logoseg_vitb.py' and inference['device'] == 'NVIDIA H200'
    assert inference['setting'] == ('autocast_bf16=True; eval_views=384x384 640x640; eval_classes=150; '
                                    'large_classes=847')
    assert inference['machine'] == machine() and re.fullmatch(r'20\d\d-\d\d-\d\d', inference['date'])
    assert next(r for r in rows if r['quantity'] == 'step_ms')['setting'] == 'batch=1; autocast_bf16=False'
