"""analysis/runs.py: which run stands for each row of a table."""
import re

import mlflow
import pytest
import runs

from .conftest import EXPECTED_FULL, EXPECTED_T4, REPO, tracking_uri

NAMES = list(runs.BENCHMARKS.values())


def chosen(table_runs, label):
    return table_runs.loc[label, NAMES].astype(float).tolist()


def test_latest_finished_run_of_the_profile_per_label(seeded_store):
    with tracking_uri(seeded_store):
        finished = runs.finished_runs('smoke')
    assert set(finished['status']) == {'FINISHED'}
    assert set(finished['tags.profile']) == {'smoke'}
    table4 = runs.table_runs(finished, 'table4')
    # the newest FINISHED `full` run, not the older one, the newer FAILED or RUNNING one, nor the paper profile's
    assert chosen(table4, 'Full, 6x6') == list(EXPECTED_FULL.values())
    # equal end times: the later start wins
    assert chosen(table4, '0.5, 8x8') == list(EXPECTED_T4.values())
    assert sorted(table4.index) == ['0.25, 6x6', '0.5, 8x8', 'Full, 6x6']
    # one run, two labels in Table 3
    table3 = runs.table_runs(finished, 'table3')
    assert table3.loc['w/ LQ + GC + DA', 'run_id'] == table3.loc['w/ fusion depth = 2', 'run_id']
    assert table3.loc['w/ LQ + GC + DA', 'run'] == 'full'


def test_other_profile_is_read_separately(seeded_store):
    with tracking_uri(seeded_store):
        paper = runs.table_runs(runs.finished_runs('paper'), 'table4')
    assert list(paper.index) == ['Full, 6x6']
    assert chosen(paper, 'Full, 6x6') == [93.0] * 6


def test_the_tables_run_is_never_a_grid_row(seeded_store):
    """The seeded tables run carries Table 2's `OP` label and ends last; the grid row `t2_op` stands."""
    with tracking_uri(seeded_store):
        table2 = runs.table_runs(runs.finished_runs('smoke'), 'table2')
    assert table2.loc['OP', 'run'] == 't2_op'


def test_no_runs_gives_no_rows(seeded_store, monkeypatch):
    with tracking_uri(seeded_store):
        other_profile = runs.finished_runs('no-such-profile')
        monkeypatch.setattr(runs, 'EXPERIMENT', 'no-such-experiment')
        absent_experiment = runs.finished_runs('smoke')
    for finished in (other_profile, absent_experiment):
        assert finished.empty
        assert runs.table_runs(finished, 'table2').empty


def test_readme_filter_finds_one_tables_rows(seeded_store):
    """The filter docs/mlflow.md gives for the UI's search box, run through MLflow's own parser."""
    doc = (REPO / 'docs' / 'mlflow.md').read_text()
    [filter_string] = re.findall(r"^- search box: `(.+)`", doc, flags=re.MULTILINE)
    with tracking_uri(seeded_store):
        found = mlflow.search_runs(experiment_names=['logoseg'], filter_string=filter_string)
    # the FINISHED smoke runs of Table 4: two `full`, two `t4_lambda05_r8`, the mislabelled one
    assert sorted(found['tags.row']) == ['full'] * 2 + ['t4_lambda05_r8'] * 2 + ['t4_typo']
    assert set(found['tags.table4']) == {'Full, 6x6', '0.5, 8x8', '0.25, 6x6'}


@pytest.mark.parametrize('params, expected', [('profile: paper\n', 'paper'), ('prepare: {workers: 2}\n', 'smoke')])
def test_default_profile_follows_params_yaml(tmp_path, monkeypatch, params, expected):
    (tmp_path / 'params.yaml').write_text(params)
    monkeypatch.setattr(runs, 'REPO', tmp_path)
    assert runs.default_profile() == expected


def test_default_tracking_uri(monkeypatch):
    monkeypatch.setenv('MLFLOW_TRACKING_URI', 'http://127.0.0.1:5000')
    assert runs.default_tracking_uri() == 'http://127.0.0.1:5000'
    monkeypatch.delenv('MLFLOW_TRACKING_URI')
    assert runs.default_tracking_uri() == f'sqlite:///{runs.REPO / "mlflow.db"}'
