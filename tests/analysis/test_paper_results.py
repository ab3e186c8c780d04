"""experiments/paper_results.csv: the paper's numbers, labelled as experiments/rows.yaml labels the grid's runs."""
import pandas as pd
import pytest
import yaml

from .conftest import REPO

BENCHMARKS = ['A-847', 'PC-459', 'A-150', 'PC-59', 'PAS-20', 'PAS-20b']
PAPER = pd.read_csv(REPO / 'experiments' / 'paper_results.csv', dtype={'row': str})
ROWS = yaml.safe_load((REPO / 'experiments' / 'rows.yaml').read_text())['rows']


def grid_labels(table: str) -> list[str]:
    labels = [row['tables'][table] for row in ROWS.values() if table in row['tables']]
    return [label for entry in labels for label in ([entry] if isinstance(entry, str) else entry)]


@pytest.mark.parametrize('table', ['table1', 'table2', 'table3', 'table4', 'table5'])
def test_every_logoseg_row_of_the_paper_is_a_grid_row_and_back(table):
    ours = PAPER[(PAPER['table'] == table) & (PAPER['source'] == 'paper')]
    assert sorted(ours['row']) == sorted(grid_labels(table))
    assert set(ours['method']) == {'LoGoSeg'}


def test_rows_are_unique_and_sources_are_known():
    assert not PAPER.duplicated(['table', 'row']).any()
    assert set(PAPER['source']) == {'paper', 'literature'}
    # only Tables 1 and 5 compare with other methods
    assert set(PAPER.loc[PAPER['source'] == 'literature', 'table']) == {'table1', 'table5'}
    assert PAPER.groupby('table').size().to_dict() == {'table1': 26, 'table2': 4, 'table3': 6, 'table4': 7,
                                                       'table5': 12}


def test_the_full_model_has_the_same_numbers_in_every_table():
    """The paper prints the full ViT-B/16 COCO-Stuff model in all five tables; a typo in one shows here."""
    full = [('table1', 'ViT-B/16'), ('table2', 'OP+CCF+RA'), ('table3', 'w/ LQ + GC + DA'),
            ('table3', 'w/ fusion depth = 2'), ('table4', 'Full, 6x6'), ('table5', 'COCO-Stuff')]
    numbers = PAPER.set_index(['table', 'row']).loc[full, BENCHMARKS]
    assert (numbers == [12.6, 19.5, 32.6, 58.2, 95.4, 78.6]).all(axis=None)


def test_numbers_are_percentages_and_dashes_are_empty():
    values = PAPER[BENCHMARKS]
    assert ((values > 0) & (values < 100) | values.isna()).all(axis=None)
    # the paper's '-' cells, e.g. LSeg reports PAS-20 only
    lseg = PAPER.set_index(['table', 'row']).loc[('table1', 'LSeg (ViT-B/32, ViT-L/16)'), BENCHMARKS]
    assert lseg.isna().tolist() == [True, True, True, True, False, True]
    # the same method and training set in Tables 1 and 5 (CAT-Seg ViT-B/16 on COCO-Stuff) has the same numbers
    t1 = PAPER.set_index(['table', 'row']).loc[('table1', 'CAT-Seg (ViT-B/16, ResNet-101)'), BENCHMARKS]
    t5 = PAPER.set_index(['table', 'row']).loc[('table5', 'CAT-Seg (COCO-Stuff)'), BENCHMARKS]
    pd.testing.assert_series_equal(t1, t5, check_names=False)
