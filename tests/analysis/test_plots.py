"""analysis/plots.py: Table 4's heatmap read back from the rendered figure's artists; a table as a PNG."""
import subprocess
import sys

import numpy as np
import pandas as pd
import plots
import tables
from matplotlib.colors import to_rgba

from .conftest import REPO

PAPER = pd.read_csv(REPO / 'experiments' / 'paper_results.csv', dtype={'row': str})
NAMES = ['A-847', 'PC-459', 'A-150', 'PC-59', 'PAS-20', 'PAS-20b']
LAMBDAS, SIZES = ['0', '0.5', 'Adapt.', 'Full'], ['4x4', '6x6', '8x8']


def heatmap(tmp_path, ours: dict[str, list[float]]):
    runs = pd.DataFrame([dict(run=f'run{i}', run_id=f'id{i}', **dict(zip(NAMES, values)))
                         for i, values in enumerate(ours.values())], index=pd.Index(list(ours), name='row'))
    table = tables.build(PAPER[PAPER['table'] == 'table4'], runs, 'smoke')
    return plots.table4_heatmap(table, tmp_path / 'table4_heatmap.png')


def texts(ax) -> dict[tuple[int, int], str]:
    """Cell (lambda index, r index) -> the text written on it."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def test_ours_and_the_papers_panel_share_one_colour_scale_with_a_colour_bar(tmp_path):
    # our 0.5, 8x8 above every number of the paper on A-847 (11.4 .. 12.6): the scale must stretch to 20.0 in both
    fig = heatmap(tmp_path, {'0.5, 8x8': [20.0, 18.3, 31.2, 57.3, 94.8, 77.0]})
    assert (tmp_path / 'table4_heatmap.png').stat().st_size > 10_000
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels[:2]] == ['A-847: ours', 'PC-459: ours']
    ours, paper = panels[0], panels[len(NAMES)]
    assert paper.get_title() == 'A-847: paper'
    assert ours.images[0].norm is paper.images[0].norm  # one scale: a colour is one mIoU in both panels
    assert (ours.images[0].norm.vmin, ours.images[0].norm.vmax) == (11.4, 20.0)
    # the paper's 12.6 (Full, 6x6) is drawn in the colour the shared scale gives it, not the top of its own
    full = paper.images[0].get_array()[LAMBDAS.index('Full'), SIZES.index('6x6')]
    assert full == 12.6 and paper.images[0].norm(full) < 0.2
    # one colour bar per benchmark, on that benchmark's scale
    bars = [ax for ax in fig.axes if not ax.images]
    assert len(bars) == len(NAMES)
    assert [ax.get_xlabel() for ax in bars] == ['mIoU (%)'] * len(NAMES)
    assert bars[0].get_xlim() == (11.4, 20.0)


def test_missing_runs_are_hatched_and_distinct_from_combinations_the_paper_never_ran(tmp_path):
    fig = heatmap(tmp_path, {'0.5, 8x8': [11.4, 18.3, 31.2, 57.3, 94.8, 77.0]})
    panels = [ax for ax in fig.axes if ax.images]
    ours, paper = panels[0], panels[len(NAMES)]
    written = texts(ours)
    assert written[LAMBDAS.index('0.5'), SIZES.index('8x8')] == '11.4'
    # the paper ran 0, 4x4 and Full, 6x6 but there is no run: missing, hatched
    for cell in [(0, 0), (0, 1), (0, 2), (1, 1), (2, 1), (3, 1)]:
        assert written[cell] == 'missing', cell
    hatched = {(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ours.patches if p.get_hatch()}
    assert hatched == {(0, 0), (0, 1), (0, 2), (1, 1), (2, 1), (3, 1)}
    # never trained by the paper (0.5, 4x4; Full, 8x8 ...): n/a in both panels, not hatched
    never = {(1, 0), (2, 0), (2, 2), (3, 0), (3, 2)}
    assert {cell for cell, text in written.items() if text == 'n/a'} == never
    assert {cell for cell, text in texts(paper).items() if text == 'n/a'} == never
    assert not [p for p in paper.patches if p.get_hatch()]  # the paper has every number it ran
    assert np.isnan(paper.images[0].get_array().filled(np.nan)[1, 0])
    assert ours.get_facecolor() == to_rgba('0.85')  # what an n/a cell shows: grey, not a colour of the scale


def test_a_table_as_a_png_shows_ours_with_the_difference(tmp_path, monkeypatch):
    runs = pd.DataFrame([dict(run='t2_op', run_id='id0', **dict(zip(NAMES, [7.41, 9.84, 14.54, 29.2, 8.97, 17.76])))],
                        index=pd.Index(['OP'], name='row'))
    tables.write(tables.build(PAPER[PAPER['table'] == 'table2'], runs, 'smoke'), 'table2', tmp_path)
    drawn = {}
    monkeypatch.setattr(plots, 'table_png', lambda cells, title, path: drawn.update(cells=cells, title=title))
    plots.main([str(tmp_path / 'table2.csv'), str(tmp_path / 'table2.png')])
    assert drawn['title'] == 'Table 2: core modules, mIoU (%) of our runs (ours - paper)'
    cells = drawn['cells']
    assert list(cells.columns) == ['row', *NAMES, 'run']
    assert cells.iloc[0].tolist() == ['OP', '7.4 (-3.4)', '9.8 (-7.8)', '14.5 (-14.1)', '29.2 (-24.7)', '9.0 (-85.3)',
                                      '17.8 (-55.3)', 't2_op']
    assert cells['row'].tolist() == ['OP', 'OP+CCF', 'OP+RA', 'OP+CCF+RA'] and cells.iloc[1, 1] == '—'
    # the documented command, as a user runs it
    subprocess.run([sys.executable, str(REPO / 'analysis' / 'plots.py'), str(tmp_path / 'table2.csv'),
                    str(tmp_path / 'table2.png')], check=True, timeout=120)
    assert (tmp_path / 'table2.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
