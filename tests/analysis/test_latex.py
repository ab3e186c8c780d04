"""analysis/latex.py: Tables 2 and 4 as LaTeX in the paper's layout, compiled by pdflatex where it is installed."""
import shutil
import subprocess

import latex
import pandas as pd
import pytest
import tables

from .conftest import REPO

PAPER = pd.read_csv(REPO / 'experiments' / 'paper_results.csv', dtype={'row': str})
NAMES = ['A-847', 'PC-459', 'A-150', 'PC-59', 'PAS-20', 'PAS-20b']


def written(tmp_path, table: str, ours: dict[str, list[float]]) -> list[str]:
    """``tableN.tex`` as tables.py writes it for runs with these numbers (row label -> six mIoU), as lines."""
    runs = pd.DataFrame([dict(run=f'run{i}', run_id=f'id{i}', **dict(zip(NAMES, values)))
                         for i, values in enumerate(ours.values())], index=pd.Index(list(ours), name='row'))
    tables.write(tables.build(PAPER[PAPER['table'] == table], runs, 'smoke'), table, tmp_path)
    return (tmp_path / f'{table}.tex').read_text().splitlines()


def test_table2_check_marks_then_our_numbers_best_in_bold(tmp_path):
    lines = written(tmp_path, 'table2', {'OP': [10.84, 17.6, 28.6, 53.9, 94.3, 73.1],
                                         'OP+RA': [10.8, 19.04, 32.0, 57.8, 94.8, 76.9]})
    assert r'\begin{tabular}{cccrrrrrr}' in lines  # descriptors centred, numbers right-aligned
    header = lines[lines.index(r'\toprule') + 1]
    assert header == r'OP & CCF & RA & A-847 & PC-459 & A-150 & PC-59 & PAS-20 & PAS-20b \\'
    body = lines[lines.index(r'\midrule') + 1:lines.index(r'\bottomrule')]
    assert body == [  # the paper's row order; 10.84 and 10.8 print alike: both are the best
        r'\checkmark &  &  & \textbf{10.8} & 17.6 & 28.6 & 53.9 & 94.3 & 73.1 \\',
        r'\checkmark & \checkmark &  & -- & -- & -- & -- & -- & -- \\',
        r'\checkmark &  & \checkmark & \textbf{10.8} & \textbf{19.0} & \textbf{32.0} & \textbf{57.8} & \textbf{94.8} '
        r'& \textbf{76.9} \\',
        r'\checkmark & \checkmark & \checkmark & -- & -- & -- & -- & -- & -- \\']
    assert r'\caption{Table 2: core modules, mIoU (\%) of our runs}' in lines


def test_table4_lambda_and_grid_columns(tmp_path):
    lines = written(tmp_path, 'table4', {'0.5, 8x8': [11.4, 18.3, 31.2, 57.3, 94.8, 77.0],
                                         'Adapt., 6x6': [12.3, 18.9, 32.3, 57.6, 95.0, -0.04]})
    assert lines[lines.index(r'\toprule') + 1].startswith(r'$\lambda$ & $r \times r$ & A-847 & ')
    assert r'0 & $4 \times 4$ & -- & -- & -- & -- & -- & -- \\' in lines
    assert r'0.5 & $8 \times 8$ & 11.4 & 18.3 & 31.2 & 57.3 & 94.8 & \textbf{77.0} \\' in lines
    # -0.04 prints as 0.0, never -0.0
    assert r'Adapt. & $6 \times 6$ & \textbf{12.3} & \textbf{18.9} & \textbf{32.3} & \textbf{57.6} & \textbf{95.0} ' \
           r'& 0.0 \\' in lines


def test_labels_are_escaped():
    assert latex.escape('w/ LQ + GC & 50% of t2_op {x}') == r'w/ LQ + GC \& 50\% of t2\_op \{x\}'


@pytest.mark.skipif(shutil.which('pdflatex') is None, reason='pdflatex not installed: LaTeX output not compiled')
def test_the_tables_compile(tmp_path):
    written(tmp_path, 'table2', {'OP': [10.8, 17.6, 28.6, 53.9, 94.3, 73.1]})
    written(tmp_path, 'table4', {'Adapt., 6x6': [12.3, 18.9, 32.3, 57.6, 95.0, 76.8]})
    (tmp_path / 'paper.tex').write_text('\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{amssymb}\n'
                                        '\\begin{document}\n\\input{table2}\n\\input{table4}\n\\end{document}\n')
    result = subprocess.run(['pdflatex', '-interaction=nonstopmode', '-halt-on-error', 'paper.tex'], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / 'paper.pdf').stat().st_size > 1000
