"""Figures of the regenerated tables (PNG): ours beside the paper's, per table and on Table 4's lambda x r grid; and
a table as a picture (for the docs, e.g. docs/table2.png in docs/mlflow.md):

    python analysis/plots.py results/<profile>/tables/tableN.csv docs/tableN.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')  # files only; no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from runs import BENCHMARKS  # noqa: E402


def ours_vs_paper(table: pd.DataFrame, title: str, path: Path) -> None:
    """Per benchmark, bars of our mIoU beside the paper's for each LoGoSeg row of ``table`` (as built by tables.py)."""
    rows = table[table['source'] == 'paper']
    labels = rows['row'].where(rows['run_id'].notna(), rows['row'] + ' (no run)')
    fig, axes = plt.subplots(1, len(BENCHMARKS), figsize=(3.2 * len(BENCHMARKS), 0.45 * len(rows) + 1.6),
                             sharey=True)
    for ax, name in zip(axes, BENCHMARKS.values()):
        bars = pd.DataFrame({'ours': rows[f'{name} ours'].to_numpy(float),
                             'paper': rows[f'{name} paper'].to_numpy(float)}, index=labels)
        bars.plot.barh(ax=ax, legend=False, color=['tab:blue', 'tab:gray'], width=0.8)
        ax.set_title(name)
        ax.set_xlabel('mIoU (%)')
    axes[0].invert_yaxis()  # the paper's row order, top to bottom
    axes[0].set_ylabel('')
    fig.legend(*axes[0].get_legend_handles_labels(), loc='upper right', ncols=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table4_heatmap(table: pd.DataFrame, path: Path) -> plt.Figure:
    """Table 4 as lambda (rows) x r (columns) grids per benchmark: ours on top, the paper's below, the two
    panels of a benchmark on one colour scale (one colour bar) so that a colour means the same mIoU in both.

    Our cell of a row the paper ran but we have no run for: hatched, ``missing``. A combination the paper
    never trained: grey, ``n/a``, in both panels. Returns the figure (closed; for the tests' inspection).
    """
    grid = table.join(table['row'].str.split(', ', expand=True).set_axis(['lambda', 'r'], axis=1))
    lambdas, sizes = pd.unique(grid['lambda']), pd.unique(grid['r'])  # the paper's order
    ran = grid.assign(ran=True).pivot(index='lambda', columns='r', values='ran')
    ran = ran.reindex(index=lambdas, columns=sizes).notna().to_numpy()
    fig, axes = plt.subplots(2, len(BENCHMARKS), figsize=(3.4 * len(BENCHMARKS), 6.4), layout='constrained')
    for col, name in enumerate(BENCHMARKS.values()):
        panels = [grid.pivot(index='lambda', columns='r', values=f'{name} {kind}')
                  .reindex(index=lambdas, columns=sizes).to_numpy(float) for kind in ('ours', 'paper')]
        norm = Normalize(np.nanmin(panels), np.nanmax(panels)) if not np.isnan(panels).all() else Normalize(0, 1)
        for line, (kind, cells) in enumerate(zip(('ours', 'paper'), panels)):
            ax = axes[line, col]
            image = ax.imshow(np.ma.masked_invalid(cells), cmap='YlGnBu', norm=norm)
            ax.set_facecolor('0.85')  # under a masked cell: grey
            for (i, j), value in np.ndenumerate(cells):
                if not ran[i, j]:
                    ax.text(j, i, 'n/a', ha='center', va='center', color='0.4')
                elif np.isnan(value):  # the paper ran it, we have no run (or no such metric)
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch='//', edgecolor='0.3',
                                           linewidth=0, gid='missing'))
                    ax.text(j, i, 'missing', ha='center', va='center', color='black', fontsize=7,
                            bbox=dict(facecolor='white', edgecolor='none', pad=1))
                else:  # white text on the dark half of the colour map
                    dark = norm(value) > 0.6
                    ax.text(j, i, f'{value:.1f}', ha='center', va='center', color='white' if dark else 'black')
            ax.set_xticks(range(len(sizes)), sizes)
            ax.set_yticks(range(len(lambdas)), lambdas)
            ax.set_title(f'{name}: {kind}')
        fig.colorbar(image, ax=axes[:, col], orientation='horizontal', label='mIoU (%)', shrink=0.9)
    for ax in axes[:, 0]:
        ax.set_ylabel('lambda')
    for ax in axes[1]:
        ax.set_xlabel('r x r')
    fig.suptitle('Table 4: prior weight lambda x region grid r, mIoU (%); n/a: not in the paper')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig


def table_png(cells: pd.DataFrame, title: str, path: Path) -> None:
    """``cells`` (strings, as tables.compared prints them) drawn as a table: a picture of the Markdown table for
    pages that show no Markdown table of this width (the README's preview on narrow screens, slides)."""
    fig, ax = plt.subplots(figsize=(1.3 * len(cells.columns) + 1, 0.25 * len(cells) + 0.6))
    ax.axis('off')
    drawn = ax.table(cellText=cells.to_numpy(), colLabels=list(cells.columns), loc='center', cellLoc='right')
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(9)
    drawn.auto_set_column_width(range(len(cells.columns)))
    for (line, _), cell in drawn.get_celld().items():
        cell.set_edgecolor('0.8')
        if line == 0:
            cell.set_text_props(weight='bold')
    ax.set_title(title)
    fig.savefig(path, dpi=150, bbox_inches='tight')
    plt.close(fig)


def main(argv: list[str]) -> None:
    from tables import TITLES, compared  # here: tables imports this module
    source, target = map(Path, argv)
    table = pd.read_csv(source, dtype={'row': str})
    cells = compared(table, '—')
    ours = table['source'] == 'paper'
    # LoGoSeg's rows, labelled as in the paper, with the run that gave each; the CSV keeps the rest
    cells = cells.loc[ours, ['row', *BENCHMARKS.values(), 'run']]
    table_png(cells, f'{TITLES.get(source.stem, source.stem)}, mIoU (%) of our runs (ours - paper)', target)


if __name__ == '__main__':
    main(sys.argv[1:])
