"""Figures of the regenerated tables (PNG): ours beside the paper's, per table and on Table 4's lambda x r grid."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use('Agg')  # files only; no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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


def table4_heatmap(table: pd.DataFrame, path: Path) -> None:
    """Table 4 as lambda (rows) x r (columns) grids per benchmark: ours on top, the paper's below.

    A blank cell: no run for that row (ours), or a combination the paper did not train.
    """
    grid = table.join(table['row'].str.split(', ', expand=True).set_axis(['lambda', 'r'], axis=1))
    lambdas, sizes = pd.unique(grid['lambda']), pd.unique(grid['r'])  # the paper's order
    fig, axes = plt.subplots(2, len(BENCHMARKS), figsize=(3.2 * len(BENCHMARKS), 6.4))
    for col, name in enumerate(BENCHMARKS.values()):
        for line, kind in enumerate(('ours', 'paper')):
            cells = grid.pivot(index='lambda', columns='r', values=f'{name} {kind}')
            cells = cells.reindex(index=lambdas, columns=sizes).to_numpy(float)
            ax = axes[line, col]
            image = ax.imshow(np.ma.masked_invalid(cells), cmap='YlGnBu')
            for (i, j), value in np.ndenumerate(cells):
                if not np.isnan(value):  # white text on the dark half of the colour map
                    dark = image.norm(value) > 0.6
                    ax.text(j, i, f'{value:.1f}', ha='center', va='center', color='white' if dark else 'black')
            ax.set_xticks(range(len(sizes)), sizes)
            ax.set_yticks(range(len(lambdas)), lambdas)
            ax.set_title(f'{name}: {kind}')
    for ax in axes[:, 0]:
        ax.set_ylabel('lambda')
    for ax in axes[1]:
        ax.set_xlabel('r x r')
    fig.suptitle('Table 4: prior weight lambda x region grid r, mIoU (%)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
