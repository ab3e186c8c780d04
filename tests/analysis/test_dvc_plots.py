"""dvc.yaml's top-level plots: one chart per paper table overlaying its rows' training curves, as DVC resolves it."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

TABLES = ['table1', 'table2', 'table3', 'table4', 'table5']
PLOTS = {name: spec for entry in yaml.safe_load((REPO / 'dvc.yaml').read_text())['plots']
         for name, spec in entry.items()}
ROWS = yaml.safe_load((REPO / 'experiments' / 'rows.yaml').read_text())['rows']
# the venv's dvc, beside the interpreter running the suite (as the README's .venv/bin/dvc)
DVC = shutil.which('dvc', path=str(Path(sys.executable).parent)) or shutil.which('dvc')


def test_each_tables_chart_lists_exactly_its_rows_curves():
    assert sorted(PLOTS) == [f'loss_{table}' for table in TABLES]
    for table in TABLES:
        spec = PLOTS[f'loss_{table}']
        rows = [key for key, row in ROWS.items() if table in row['tables']]
        # grid.Row.curve_file: results/<profile>/curves/<row>.csv, columns iter, loss, lr
        assert spec['y'] == {f'results/${{profile}}/curves/{key}.csv': 'loss' for key in rows}, table
        assert spec['x'] == 'iter'


@pytest.mark.skipif(DVC is None, reason='dvc not installed: the plot definitions not resolved')
def test_dvc_overlays_the_rows_curves_on_one_chart(tmp_path):
    subprocess.run([DVC, 'init', '--no-scm', '-q'], cwd=tmp_path, check=True, timeout=120)
    (tmp_path / 'params.yaml').write_text('profile: smoke\n')  # ${profile}, as the project's params.yaml sets it
    (tmp_path / 'dvc.yaml').write_text(yaml.safe_dump({'plots': [{'loss_table4': PLOTS['loss_table4']}]}))
    curves = tmp_path / 'results' / 'smoke' / 'curves'
    curves.mkdir(parents=True)
    rows = [key for key, row in ROWS.items() if 'table4' in row['tables']]
    for n, key in enumerate(rows):  # as run_row.write_curve writes them; a distinct loss per row
        (curves / f'{key}.csv').write_text(f'iter,loss,lr\n10,{2 + n},0.01\n20,{1 + n}.5,0.01\n')
    result = subprocess.run([DVC, 'plots', 'show', '--json', 'loss_table4'], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    shown = json.loads(result.stdout)
    assert not shown.get('errors')
    [chart] = shown['data']['loss_table4']  # one chart, not one per row
    points = chart['content']['data']['values']
    assert {p['filename'] for p in points} == {f'{key}.csv' for key in rows}
    assert {(p['filename'], p['iter'], p['loss']) for p in points} >= {('full.csv', '20', '1.5'),
                                                                       (f'{rows[-1]}.csv', '10', f'{1 + len(rows)}')}
    assert chart['content']['encoding']['y']['field'] == 'loss'


@pytest.mark.skipif(DVC is None, reason='dvc not installed: the plot definitions not resolved')
def test_a_row_without_a_curve_is_named_missing_and_the_others_are_drawn(tmp_path):
    subprocess.run([DVC, 'init', '--no-scm', '-q'], cwd=tmp_path, check=True, timeout=120)
    (tmp_path / 'params.yaml').write_text('profile: smoke\n')
    (tmp_path / 'dvc.yaml').write_text(yaml.safe_dump({'plots': [{'loss_table4': PLOTS['loss_table4']}]}))
    curves = tmp_path / 'results' / 'smoke' / 'curves'
    curves.mkdir(parents=True)
    rows = [key for key, row in ROWS.items() if 'table4' in row['tables']]
    for key in rows[:-1]:  # the last row has not run
        (curves / f'{key}.csv').write_text('iter,loss,lr\n10,2.0,0.01\n')
    result = subprocess.run([DVC, 'plots', 'show', '--json', 'loss_table4'], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    shown = json.loads(result.stdout)
    assert [(e['source'], e['type']) for e in shown['errors']] == [
        (f'results/smoke/curves/{rows[-1]}.csv', 'FileNotFoundError')]
    [chart] = shown['data']['loss_table4']
    assert {p['filename'] for p in chart['content']['data']['values']} == {f'{key}.csv' for key in rows[:-1]}
