"""segment_benchmark on the smoke model: one photo size, one vocabulary, its figures appended to a CSV."""
import csv
import subprocess
import sys

from logoseg.utils import measurements

from ..conftest import REPO, SMOKE_CONFIG


def test_segment_benchmark_records_its_rows_with_machine_and_date(tmp_path):
    record = tmp_path / 'speed.csv'
    proc = subprocess.run([sys.executable, '-m', 'logoseg.tools.segment_benchmark', '--config', str(SMOKE_CONFIG),
                           '--megapixels', '1', '--vocab', '4', '--threads', '1', '--record', str(record)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(record, newline='') as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == measurements.COLUMNS
    assert {r['quantity'] for r in rows} == {'loaded_peak_mb', 'peak_mb', 'segment_s', 'write_s', 'classes_resized'}
    for row in rows:
        assert row['section'] == 'segment' and row['config'] == 'logoseg_smoke.py' and row['date']
        assert row['machine'] == measurements.machine()
        assert row['setting'] == 'megapixels=1.0; size=1224x816; classes=4'
    assert f'appended 5 figures to {record}' in proc.stdout
