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
