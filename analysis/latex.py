"""Tables 2 and 4 as LaTeX in the paper's layout: the row's descriptors (OP / CCF / RA check marks; lambda and
the region grid r x r), then our mIoU on the six benchmarks, one decimal, the best of each column in bold.

A fragment to ``\\input`` into a document that loads booktabs and amssymb (``\\checkmark``). The comparison with
the paper's numbers stays in ``tableN.md`` and ``tableN.csv``.
"""
from __future__ import annotations

import pandas as pd

from runs import BENCHMARKS

MISSING = '--'  # a row without a FINISHED run, as the paper prints an empty cell
SPECIAL = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#', '_': r'\_', '{': r'\{',
           '}': r'\}', '~': r'\textasciitilde{}', '^': r'\textasciicircum{}'}


def escape(text: str) -> str:
    """``text`` as LaTeX prints it literally (row labels such as ``w/ LQ + GC`` or a run named ``t2_op``)."""
    return ''.join(SPECIAL.get(char, char) for char in str(text))


def table2_descriptors(labels: pd.Series) -> pd.DataFrame:
    """``OP+CCF`` -> a check mark under OP and CCF, none under RA."""
    modules = labels.str.split('+', regex=False)
    return pd.DataFrame({name: modules.map(lambda used, name=name: r'\checkmark' if name in used else '')
                         for name in ('OP', 'CCF', 'RA')})


def table4_descriptors(labels: pd.Series) -> pd.DataFrame:
    """``0.5, 8x8`` -> lambda ``0.5``, r ``8 x 8``; ``Adapt.`` (the learnable prior) and ``Full`` as printed."""
    parts = labels.str.split(', ', n=1, expand=True)
    grid = parts[1].str.split('x', n=1, expand=True)
    return pd.DataFrame({r'$\lambda$': parts[0].map(escape),
                         r'$r \times r$': '$' + grid[0] + r' \times ' + grid[1] + '$'})


LAYOUTS = {'table2': table2_descriptors, 'table4': table4_descriptors}


def number(value: float, best: float) -> str:
    if pd.isna(value):
        return MISSING
    shown = f'{round(value, 1) + 0.0:.1f}'  # never -0.0
    return rf'\textbf{{{shown}}}' if round(value, 1) == best else shown


def paper_layout(table: pd.DataFrame, name: str, caption: str) -> str:
    """``table`` (as tables.py builds it) as a LaTeX ``table`` in the paper's layout of ``name``: its LoGoSeg
    rows in the paper's order, our numbers; the best of each column (as printed, one decimal) in bold, ties
    all bold."""
    rows = table[table['source'] == 'paper'].reset_index(drop=True)
    cells = LAYOUTS[name](rows['row'])
    for column in BENCHMARKS.values():
        ours = rows[f'{column} ours'].astype(float)
        best = ours.map(lambda value: round(value, 1)).max()  # as printed: Python's rounding, as number()'s
        cells[escape(column)] = ours.map(lambda value, best=best: number(value, best))
    descriptors = len(cells.columns) - len(BENCHMARKS)
    lines = [r'\begin{table}', r'\centering', rf'\caption{{{escape(caption)}}}', rf'\label{{tab:{name}}}',
             rf'\begin{{tabular}}{{{"c" * descriptors}{"r" * len(BENCHMARKS)}}}', r'\toprule',
             ' & '.join(cells.columns) + r' \\', r'\midrule',
             *[' & '.join(row) + r' \\' for row in cells.itertuples(index=False)],
             r'\bottomrule', r'\end{tabular}', r'\end{table}']
    return '\n'.join(lines) + '\n'
