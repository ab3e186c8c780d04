"""analysis/own_data.py: every grid row on every declared dataset, from the runs' ``<name>/<metric>`` figures."""
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import own_data  # noqa: E402  (analysis/ is on sys.path: tests/analysis/conftest.py)


def runs_frame(*runs):
    """What ``runs.finished_runs`` returns: newest first, metrics and tags as columns."""
    return pd.DataFrame(runs)


RUNS = runs_frame(
    {'run_id': 'b2', 'tags.row': 'own', 'tags.mlflow.runName': 'own', 'metrics.mine/mIoU': 41.254,
     'metrics.mine/hallucination_rate': 0.25, 'metrics.other/mIoU': 12.5, 'metrics.other/hallucination_rate': 0.5},
    {'run_id': 'a1', 'tags.row': 'full', 'tags.mlflow.runName': 'full', 'metrics.mine/mIoU': 30.0,
     'metrics.mine/hallucination_rate': 0.125, 'metrics.other/mIoU': np.nan,
     'metrics.other/hallucination_rate': np.nan},
    {'run_id': 'old', 'tags.row': 'full', 'tags.mlflow.runName': 'full', 'metrics.mine/mIoU': 99.0,
     'metrics.mine/hallucination_rate': 0.0, 'metrics.other/mIoU': 99.0, 'metrics.other/hallucination_rate': 0.0},
)


def test_one_line_per_grid_row_in_grid_order_with_its_newest_run():
    table = own_data.dataset_table(RUNS, ['mine', 'other'], ['full', 't2_op', 'own'])
    assert list(table['row']) == ['full', 't2_op', 'own']
    assert list(table.columns) == ['row', 'mine mIoU', 'mine hallucination', 'other mIoU', 'other hallucination',
                                   'run', 'run_id']
    full, t2_op, own = (table.iloc[i] for i in range(3))
    assert full['run_id'] == 'a1' and full['mine mIoU'] == 30.0 and np.isnan(full['other mIoU'])
    assert t2_op.drop('row').isna().all()  # a row without a run is there, empty
    assert own['mine mIoU'] == 41.25 and own['other hallucination'] == 0.5


def test_written_files_show_the_numbers_and_mark_what_was_not_evaluated(tmp_path):
    table = own_data.dataset_table(RUNS, ['mine', 'other'], ['full', 'own'])
    own_data.write_dataset_table(table, ['mine', 'other'], tmp_path, 'smoke')
    assert pd.read_csv(tmp_path / 'datasets.csv').loc[1, 'mine mIoU'] == 41.25
    markdown = (tmp_path / 'datasets.md').read_text()
    full_line = next(line for line in markdown.splitlines() if line.startswith('| full'))
    assert '30.00' in full_line and '0.1250' in full_line and '—' in full_line and 'nan' not in markdown
    tex = (tmp_path / 'datasets.tex').read_text()
    assert r'\multicolumn{2}{c}{mine}' in tex and '41.25' in tex and '--' in tex
    assert (tmp_path / 'datasets.png').read_bytes()[:4] == b'\x89PNG'


def test_no_run_at_all_gives_the_rows_empty():
    table = own_data.dataset_table(pd.DataFrame(columns=['run_id']), ['mine'], ['full'])
    assert list(table['row']) == ['full'] and table['mine mIoU'].isna().all()


@pytest.mark.skipif(shutil.which('pdflatex') is None, reason='pdflatex not installed: LaTeX output not compiled')
def test_the_table_compiles(tmp_path):
    own_data.write_dataset_table(own_data.dataset_table(RUNS, ['mine', 'other'], ['full', 'own']),
                                 ['mine', 'other'], tmp_path, 'smoke')
    (tmp_path / 'paper.tex').write_text('\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n'
                                        '\\input{datasets}\n\\end{document}\n')
    result = subprocess.run(['pdflatex', '-interaction=nonstopmode', '-halt-on-error', 'paper.tex'], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
