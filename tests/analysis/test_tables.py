"""analysis/tables.py on a store seeded with known numbers: ours copied exactly, paper from the CSV, diff, missing."""
import json
import re

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from .conftest import EXPECTED_FULL, EXPECTED_T2_OP, EXPECTED_T4, REPO, run_tables

NAMES = dict(ade847='A-847', pc459='PC-459', ade150='A-150', pc59='PC-59', voc20='PAS-20', voc20b='PAS-20b')
PAPER = pd.read_csv(REPO / 'experiments' / 'paper_results.csv', dtype={'row': str})
TABLES = ['table1', 'table2', 'table3', 'table4', 'table5']
# row label -> the seeded run's numbers, per table; every other LoGoSeg row has no FINISHED smoke run
FOUND = {'table1': {'ViT-B/16': EXPECTED_FULL}, 'table2': {'OP+CCF+RA': EXPECTED_FULL, 'OP': EXPECTED_T2_OP},
         'table3': {'w/ LQ + GC + DA': EXPECTED_FULL, 'w/ fusion depth = 2': EXPECTED_FULL},
         'table4': {'Full, 6x6': EXPECTED_FULL, '0.5, 8x8': EXPECTED_T4}, 'table5': {'COCO-Stuff': EXPECTED_FULL}}


@pytest.fixture(scope='module')
def written(seeded_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('tables')
    out = tmp / 'out'
    out.mkdir()
    (out / 'stale.md').write_text('from an earlier run')
    # as if called from inside a tracked training: the tables run must still be a run of its own
    client = MlflowClient(seeded_store)
    experiment = client.get_experiment_by_name('logoseg').experiment_id
    grid_run = client.search_runs([experiment], "tags.row = 't2_op'")[0].info.run_id
    result = run_tables('--tracking-uri', seeded_store, '--profile', 'smoke', '--out', str(out),
                        '--metrics', str(tmp / 'metrics' / 'tables.json'), cwd=tmp, env={'MLFLOW_RUN_ID': grid_run})
    return out, result, grid_run


def read(out, table):
    return pd.read_csv(out / f'{table}.csv', dtype={'row': str}, float_precision='round_trip')


@pytest.mark.parametrize('table', TABLES)
def test_ours_is_the_selected_run_exactly_and_missing_rows_stay_empty(written, table):
    out = written[0]
    frame = read(out, table).set_index('row')
    for label in frame.index[frame['source'] == 'paper']:
        ours = frame.loc[label, [f'{name} ours' for name in NAMES.values()]].astype(float)
        expected = FOUND[table].get(label)
        if expected is None:
            assert ours.isna().all(), label
            assert frame.loc[label, 'note'] == 'missing: no FINISHED smoke run'
            assert pd.isna(frame.loc[label, 'run_id'])
        else:
            # a benchmark the run did not log is empty, not zero
            assert ours.tolist() == pytest.approx([expected.get(key, np.nan) for key in NAMES], rel=0, abs=0,
                                                  nan_ok=True), label
            assert pd.isna(frame.loc[label, 'note'])


@pytest.mark.parametrize('table', TABLES)
def test_paper_column_is_the_csv_data_in_paper_order_and_diff_is_ours_minus_paper(written, table):
    out = written[0]
    frame = read(out, table)
    paper = PAPER[PAPER['table'] == table].reset_index(drop=True)
    assert frame['row'].tolist() == paper['row'].tolist()
    assert frame['source'].tolist() == paper['source'].tolist()
    for name in NAMES.values():
        np.testing.assert_array_equal(frame[f'{name} paper'], paper[name])
        diff = frame[f'{name} diff']
        np.testing.assert_array_equal(diff, (frame[f'{name} ours'] - paper[name]).round(2))
        assert not np.signbit(diff[diff == 0]).any()  # 0.0, never -0.0


@pytest.mark.parametrize('table', ['table1', 'table5'])
def test_literature_rows_have_the_papers_numbers_only(written, table):
    out = written[0]
    frame = read(out, table)
    literature = frame[frame['source'] == 'literature']
    assert len(literature) == {'table1': 22, 'table5': 9}[table]
    assert literature[[f'{name} ours' for name in NAMES.values()]].isna().all(axis=None)
    assert set(literature['note']) == {'literature'}


def test_markdown_and_latex_show_the_same_rows(written):
    out = written[0]
    markdown = (out / 'table4.md').read_text().splitlines()
    line = next(line for line in markdown if line.startswith('| 0.5, 8x8'))
    cells = [cell.strip() for cell in line.strip('|').split('|')]
    # row | method | source, then one cell per benchmark: ours (ours - paper), one decimal as the paper prints
    assert cells[3:9] == ['1.5 (-9.9)', '2.2 (-16.1)', '3.8 (-27.4)', '4.1 (-53.2)', '5.5 (-89.3)', '6.1 (-70.9)']
    assert cells[-2] == 't4_lambda05_r8'
    missing = next(line for line in markdown if line.startswith('| 0, 4x4'))
    cells = [cell.strip() for cell in missing.strip('|').split('|')]
    assert cells[3:9] == ['—'] * 6
    assert cells[-2:] == ['', 'missing: no FINISHED smoke run']
    # the other methods' rows: the paper's numbers
    line = next(line for line in (out / 'table1.md').read_text().splitlines() if line.startswith('| SED (ConvNeXt-L)'))
    assert [cell.strip() for cell in line.strip('|').split('|')][-8:] == ['13.9', '22.6', '35.2', '60.6', '96.1',
                                                                          '—', '', 'literature']
    # every table's LaTeX is in the paper's layout (tests/analysis/test_latex.py)
    latex = (out / 'table4.tex').read_text()
    assert r'0.5 & $8 \times 8$ & 1.5 & 2.2 & 3.8 & 4.1 & 5.5 & 6.1 \\' in latex
    assert r'0 & $4 \times 4$ & -- & -- & -- & -- & -- & -- \\' in latex
    latex = (out / 'table4_vs_paper.tex').read_text()
    assert r'0.5 & $8 \times 8$ & 1.5 {\scriptsize(-9.9)} & 2.2 {\scriptsize(-16.1)} &' in latex
    latex = (out / 'table3.tex').read_text()
    assert r'\checkmark & \checkmark & \checkmark & 2 & \textbf{3.1} & \textbf{7.2} &' in latex
    assert r'\checkmark & \checkmark &  & 2 & -- & -- &' in latex


def test_float32_noise_and_zero_differences_print_clean(tmp_path):
    """A run logged before metrics were rounded at the source holds float32 noise (11.61 logged as
    11.609999656677246): ours as MMSeg reports it (2 decimals), differences rounded, and no -0.0 anywhere."""
    import tables
    paper = PAPER[PAPER['table'] == 'table4']
    cells = paper.set_index('row').loc['0, 4x4', list(NAMES.values())].astype(float)
    assert cells['A-847'] == 11.6
    ours = {'A-847': float(np.float32(11.61)),  # 11.609999656677246: diff 0.01, not 0.009999656677246449
            'PC-459': cells['PC-459'] - 0.04,  # -0.04: one decimal rounds it to -0.0
            'A-150': cells['A-150'],  # no difference
            'PC-59': cells['PC-59'] + 0.04, 'PAS-20': cells['PAS-20'] - 0.01,
            'PAS-20b': float(np.float32(cells['PAS-20b']))}  # float32 noise around the paper's number
    runs = pd.DataFrame([dict(run='t4_lambda0_r4', run_id='abc', **ours)], index=pd.Index(['0, 4x4'], name='row'))
    tables.write(tables.build(paper, runs, 'smoke'), 'table4', tmp_path)
    row = read(tmp_path, 'table4').set_index('row').loc['0, 4x4']
    assert row['A-847 ours'] == 11.61 and row['PAS-20b ours'] == cells['PAS-20b']
    assert [row[f'{name} diff'] for name in NAMES.values()] == [0.01, -0.04, 0.0, 0.04, -0.01, 0.0]
    for suffix in ('.csv', '.md', '.tex', '_vs_paper.tex'):  # -0.0 as a number (-0.04 is one)
        assert not re.search(r'(?<![\d.])-0\.0(?!\d)', (tmp_path / f'table4{suffix}').read_text()), suffix
    line = next(line for line in (tmp_path / 'table4.md').read_text().splitlines() if line.startswith('| 0, 4x4'))
    shown = [cell.strip() for cell in line.strip('|').split('|')]
    # every difference rounds to none: neither -0.0 nor +0.0
    assert shown[3:9] == ['11.6 (0.0)', '18.8 (0.0)', '31.6 (0.0)', '56.9 (0.0)', '94.5 (0.0)', '76.4 (0.0)']
    assert '(0.0)' in (tmp_path / 'table4_vs_paper.tex').read_text()


def test_plots_summary_and_a_clean_output_folder(written):
    out = written[0]
    pngs = sorted(p.name for p in out.glob('*.png'))
    assert pngs == ['datasets.png', 'table1.png', 'table2.png', 'table3.png', 'table4.png', 'table4_heatmap.png',
                    'table5.png']
    for png in out.glob('*.png'):
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000
    assert not (out / 'stale.md').exists()  # the folder is replaced, not written over
    # no temporary folder left beside it, nothing written into the working directory
    assert sorted(path.name for path in out.parent.iterdir()) == ['metrics', 'out']
    summary = json.loads((out / 'summary.json').read_text())
    assert json.loads((out.parent / 'metrics' / 'tables.json').read_text()) == summary  # --metrics, for DVC
    assert summary['table4'] == {'rows': 7, 'found': 2, 'missing': ['0, 4x4', '0, 6x6', '0, 8x8', '0.5, 6x6',
                                                                     'Adapt., 6x6'],
                                 'mean_abs_diff': summary['table4']['mean_abs_diff']}
    diffs = read(out, 'table4').filter(like=' diff').abs().stack()
    assert summary['table4']['mean_abs_diff'] == pytest.approx(diffs.mean(), abs=1e-4)


def test_unknown_labels_are_reported_not_shown(written):
    out, result, _ = written
    assert "tables: table4: runs t4_typo carry labels not in the paper ('0.25, 6x6')" in result.stderr
    assert '0.25, 6x6' not in (out / 'table4.csv').read_text()


def test_tables_run_is_logged_with_the_written_files(written, seeded_store):
    out, _, grid_run = written
    client = MlflowClient(seeded_store)
    experiment = client.get_experiment_by_name('logoseg').experiment_id
    # the newest one: the seeded store already holds an older tables run
    run = client.search_runs([experiment], "tags.kind = 'tables' and attributes.status = 'FINISHED'",
                             order_by=['attributes.start_time DESC'])[0]
    assert run.info.run_name == 'tables'
    assert run.data.tags['profile'] == 'smoke'
    assert run.data.metrics['table4/found'] == 2
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {p.name for p in out.iterdir()}
    assert run.info.run_id != grid_run
    assert 'kind' not in client.get_run(grid_run).data.tags and not client.list_artifacts(grid_run)
