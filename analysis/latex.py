"""Tables 1-5 as LaTeX in the paper's layout: the row's descriptors (Table 1 method / VLM / feature backbone /
training set / additional data; the module check marks of Tables 2 and 3; lambda and the region grid r x r of
Table 4; Table 5's training set), then the mIoU on the six benchmarks, one decimal, the best of each column in
bold. LoGoSeg's rows carry our numbers; the other methods' rows (Tables 1 and 5) the paper's.

:func:`paper_layout` writes ``tableN.tex`` (our numbers as the paper prints its own) and, with ``versus``,
``tableN_vs_paper.tex`` (each of our numbers followed by ours - paper in small type). A fragment to ``\\input``
into a document that loads booktabs and amssymb (``\\checkmark``).
"""
from __future__ import annotations

import pandas as pd

from runs import BENCHMARKS

MISSING = '--'  # a row without a FINISHED run, as the paper prints an empty cell
SPECIAL = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#', '_': r'\_', '{': r'\{',
           '}': r'\}', '~': r'\textasciitilde{}', '^': r'\textasciicircum{}'}
CHECK = r'\checkmark'


def escape(text: str) -> str:
    """``text`` as LaTeX prints it literally (row labels such as ``w/ LQ + GC`` or a run named ``t2_op``)."""
    return ''.join(SPECIAL.get(char, char) for char in str(text))


def checks(used: pd.Series, names: tuple[str, ...]) -> pd.DataFrame:
    """One column per module name: a check mark where the row's set of modules ``used`` holds it."""
    return pd.DataFrame({name: used.map(lambda modules, name=name: CHECK if name in modules else '')
                         for name in names})


def table1_descriptors(rows: pd.DataFrame) -> pd.DataFrame:
    """Method, the VLM and the extra feature backbone (empty when the method has none), the training set and
    a check mark where the method used additional data, as paper_results.csv holds them."""
    extra = rows['additional_data'].astype(str).str.lower() == 'true'
    return pd.DataFrame({'Method': rows['method'].map(escape), 'VLM': rows['vlm'].fillna('').map(escape),
                         'Feature backbone': rows['feature_backbone'].fillna('').map(escape),
                         'Training set': rows['training_set'].map(escape),
                         'Add. data': extra.map({True: CHECK, False: ''})})


def table2_descriptors(rows: pd.DataFrame) -> pd.DataFrame:
    """``OP+CCF`` -> a check mark under OP and CCF, none under RA."""
    return checks(rows['row'].str.split('+', regex=False), ('OP', 'CCF', 'RA'))


def table3_descriptors(rows: pd.DataFrame) -> pd.DataFrame:
    """``w/ LQ + GC`` -> check marks under LQ and GC, depth 2; ``w/ fusion depth = 3`` -> all three modules,
    depth 3: the rows vary one knob of the full model (LQ + GC + DA, depth 2; experiments/rows.yaml)."""
    depth = rows['row'].str.extract(r'fusion depth = (\d+)', expand=False)
    used = rows['row'].where(depth.isna(), 'LQ + GC + DA').str.findall(r'LQ|GC|DA')
    return checks(used, ('LQ', 'GC', 'DA')).assign(Depth=depth.fillna('2'))


def table4_descriptors(rows: pd.DataFrame) -> pd.DataFrame:
    """``0.5, 8x8`` -> lambda ``0.5``, r ``8 x 8``; ``Adapt.`` (the learnable prior) and ``Full`` as printed."""
    parts = rows['row'].str.split(', ', n=1, expand=True)
    grid = parts[1].str.split('x', n=1, expand=True)
    return pd.DataFrame({r'$\lambda$': parts[0].map(escape),
                         r'$r \times r$': '$' + grid[0] + r' \times ' + grid[1] + '$'})


def table5_descriptors(rows: pd.DataFrame) -> pd.DataFrame:
    """Method and the set it was trained on (then evaluated on all six benchmarks)."""
    return pd.DataFrame({'Method': rows['method'].map(escape), 'Training set': rows['training_set'].map(escape)})


LAYOUTS = {'table1': table1_descriptors, 'table2': table2_descriptors, 'table3': table3_descriptors,
           'table4': table4_descriptors, 'table5': table5_descriptors}


def one_decimal(value: float) -> str:
    return f'{round(value, 1) + 0.0:.1f}'  # + 0.0: never -0.0


def number(value: float, best: float, diff: float = float('nan')) -> str:
    """``value`` to one decimal, bold when it is the column's ``best`` as printed; then ``diff`` (ours - paper),
    signed, in small type where given."""
    if pd.isna(value):
        return MISSING
    shown = one_decimal(value)
    shown = rf'\textbf{{{shown}}}' if round(value, 1) == best else shown
    if pd.isna(diff):
        return shown
    diff = round(diff, 1) + 0.0
    return rf'{shown} {{\scriptsize({f"{diff:+.1f}" if diff else "0.0"})}}'  # no difference: 0.0, unsigned


def paper_layout(table: pd.DataFrame, name: str, caption: str, versus: bool = False) -> str:
    """``table`` (as tables.py builds it) as a LaTeX ``table`` in the paper's layout of ``name``: the paper's
    rows in its order, ours on LoGoSeg's rows, the paper's on the other methods'; the best of each column (as
    printed, one decimal) in bold, ties all bold. ``versus``: each of our numbers followed by ours - paper."""
    rows = table.reset_index(drop=True)
    cells = LAYOUTS[name](rows)
    for column in BENCHMARKS.values():
        ours = rows[f'{column} ours'].astype(float)
        # the other methods' rows: the paper's numbers, and nothing to compare them with
        shown = ours.where(rows['source'] == 'paper', rows[f'{column} paper'].astype(float))
        diff = rows[f'{column} diff'].astype(float) if versus else pd.Series(float('nan'), index=rows.index)
        best = shown.map(lambda value: round(value, 1)).max()  # as printed: Python's rounding, as number()'s
        cells[escape(column)] = [number(value, best, d) for value, d in zip(shown, diff)]
    descriptors = len(cells.columns) - len(BENCHMARKS)
    lines = [r'\begin{table}', r'\centering', rf'\caption{{{escape(caption)}}}',
             rf'\label{{tab:{name}{"_vs_paper" if versus else ""}}}',
             rf'\begin{{tabular}}{{{"c" * descriptors}{"r" * len(BENCHMARKS)}}}', r'\toprule',
             ' & '.join(cells.columns) + r' \\', r'\midrule',
             *[' & '.join(row) + r' \\' for row in cells.itertuples(index=False)],
             r'\bottomrule', r'\end{tabular}', r'\end{table}']
    return '\n'.join(lines) + '\n'
