"""Grid rows -> configs, tags and params: each knob flips its one switch, nothing else."""
import json
from pathlib import Path

import pytest
import yaml

from logoseg.datasets.benchmarks import BENCHMARKS
from logoseg.experiments.grid import HEAD_KNOBS, load_row, set_schedule
from logoseg.utils.errors import LoGoSegUserError

REPO = Path(__file__).resolve().parents[2]
ROWS = yaml.safe_load((REPO / 'experiments' / 'rows.yaml').read_text())


def test_the_grid_has_the_papers_distinct_trainings():
    rows = ROWS['rows']
    tables = {table for row in rows.values() for table in row['tables']}
    assert tables == {'table1', 'table2', 'table3', 'table4', 'table5'}
    in_2_to_5 = [key for key, row in rows.items() if set(row['tables']) - {'table1'}]
    assert len(in_2_to_5) == 16  # Tables 2-5: 16 distinct trainings; the full model is shared
    assert len(rows) == 19  # + ViT-L/14, ConvNeXt-B, ConvNeXt-L of Table 1
    configs = [tuple(sorted(dict(ROWS['knobs'], **(row['set'] or {})).items())) for row in rows.values()]
    assert len(set(configs)) == len(configs), 'two rows train the same configuration'
    labels = {(table, label) for row in rows.values() for table, labels in row['tables'].items()
              for label in (labels if isinstance(labels, list) else [labels])}
    assert len(labels) == 4 + 4 + 6 + 7 + 3  # every paper row label of Tables 1-5 exactly once


@pytest.mark.parametrize('key', list(ROWS['rows']))
def test_every_row_builds_its_config_with_only_its_knobs_changed(key):
    row = load_row(key, 'smoke', REPO)
    full = load_row('full', 'smoke', REPO)
    options, full_options = row.cfg_options(), full.cfg_options()
    changed = {k for k in options if options[k] != full_options[k]}
    knob_keys = {f'model.decode_head.{HEAD_KNOBS[k]}' for k in ROWS['rows'][key]['set'] if k in HEAD_KNOBS}
    if 'lambda' in ROWS['rows'][key]['set']:
        knob_keys.add('model.decode_head.prior_lambda')
    if 'train_set' in ROWS['rows'][key]['set']:
        knob_keys.add('train_dataloader.dataset.type')
    assert changed == knob_keys
    assert row.config_file.is_file()


def test_row_tags_name_the_tables_and_the_papers_labels():
    tags = load_row('full', 'smoke', REPO).tags()
    assert tags['row'] == 'full' and tags['profile'] == 'smoke' and tags['tables'] == '1,2,3,4,5'
    assert tags['table3'] == 'w/ LQ + GC + DA | w/ fusion depth = 2'
    assert tags['table4'] == 'Full, 6x6'
    assert load_row('t4_adapt_r6', 'paper', REPO).cfg_options()['model.decode_head.prior_lambda'] == 'learnable'


def test_paper_profile_uses_the_paper_configs_and_batch_per_gpu():
    row = load_row('t1_vitl', 'paper', REPO)
    assert row.config_file == REPO / 'configs' / 'logoseg_vitl.py'
    assert row.cfg_options()['train_dataloader.batch_size'] == 1  # total batch 4 on 4 GPUs
    assert row.work_dir.parent == REPO / 'results' / 'paper' / 'train' / 't1_vitl'
    assert row.work_dir.name == row.fingerprint[:12]


def test_schedule_follows_max_iters():
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / 'configs' / 'logoseg_vitb.py'))
    set_schedule(cfg, 1000)
    assert cfg.train_cfg.max_iters == 1000 and cfg.train_cfg.val_interval == 1000
    assert cfg.param_scheduler[-1]['end'] == 1000 and cfg.default_hooks.checkpoint.interval == 500
    assert cfg.param_scheduler[0]['end'] == 100 and cfg.param_scheduler[-1]['begin'] == 100  # warm-up 1500
    set_schedule(cfg, 80000)
    assert cfg.param_scheduler[0]['end'] == 100  # a warm-up that fits is kept


def test_bad_rows_and_profiles_are_one_line_errors(tmp_path):
    (tmp_path / 'experiments').mkdir()
    (tmp_path / 'params.yaml').write_text((REPO / 'params.yaml').read_text())
    bad = dict(ROWS, rows=dict(typo=dict(tables={}, set=dict(lamda=0.5)),
                               big=dict(tables={}, set=dict(backbone='vit-h'))))
    (tmp_path / 'experiments' / 'rows.yaml').write_text(yaml.safe_dump(bad))
    with pytest.raises(LoGoSegUserError, match=r"row 'typo' sets unknown knob\(s\) \['lamda'\]"):
        load_row('typo', 'smoke', tmp_path)
    with pytest.raises(LoGoSegUserError, match="backbone 'vit-h'; use one of vitb, vitl"):
        load_row('big', 'smoke', tmp_path)
    with pytest.raises(LoGoSegUserError, match="unknown grid row 'nope'"):
        load_row('nope', 'smoke', tmp_path)
    with pytest.raises(LoGoSegUserError, match="unknown profile 'gpu'"):
        load_row('typo', 'gpu', tmp_path)


def test_the_training_fingerprint_covers_vocabularies_and_utils_not_evaluation():
    from logoseg.experiments.grid import PACKAGE, training_sources
    sources = {path.relative_to(PACKAGE).as_posix() for path in training_sources()}
    assert {'vocab/coco.json', 'utils/vocab.py', 'models/head.py', 'datasets/benchmarks.py',
            'engine/hooks.py', 'models/model_configs/LoGoSeg-Smoke-ViT-B.json'} <= sources
    assert not any(name.startswith(('evaluation/', 'tools/')) or '__pycache__' in name for name in sources)


def test_a_bad_knob_is_refused_when_the_row_is_loaded_before_any_training(tmp_path):
    (tmp_path / 'experiments').mkdir()
    (tmp_path / 'params.yaml').write_text((REPO / 'params.yaml').read_text())
    (tmp_path / 'configs').symlink_to(REPO / 'configs')
    bad = dict(ROWS, rows=dict(big_lambda=dict(tables={}, set={'lambda': 2})))
    (tmp_path / 'experiments' / 'rows.yaml').write_text(yaml.safe_dump(bad))
    row = load_row('big_lambda', 'smoke', tmp_path)
    with pytest.raises(LoGoSegUserError, match=r"prior_lambda=2.0: use a number in \[0, 1\] or 'learnable'"):
        row.work_dir  # noqa: B018 (the work dir is named by the validated config's fingerprint)
    assert not (tmp_path / 'results').exists()


def grid_with(tmp_path, rows: dict, **profile) -> Path:
    """A repository root holding params.yaml (the smoke profile changed by ``profile``) and ``rows``."""
    (tmp_path / 'experiments').mkdir(exist_ok=True)
    params = yaml.safe_load((REPO / 'params.yaml').read_text())
    params['smoke'].update(profile)
    (tmp_path / 'params.yaml').write_text(yaml.safe_dump(params))
    (tmp_path / 'experiments' / 'rows.yaml').write_text(yaml.safe_dump(dict(ROWS, rows=rows), sort_keys=False))
    if not (tmp_path / 'configs').exists():
        (tmp_path / 'configs').symlink_to(REPO / 'configs')
    return tmp_path


def prepared_manifest(root: Path, name: str, digest: str) -> None:
    folder = root / 'prepared' / 'datasets' / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'manifest.json').write_text(json.dumps(dict(
        name=name, classes=['sky', 'grass, lawn'], ignore_index=255, eval_split='val', digest=digest,
        splits=dict(train=dict(items=[]), val=dict(items=[])))))


def test_a_declared_dataset_is_a_train_set_whose_prepared_version_is_in_the_fingerprint(tmp_path):
    root = grid_with(tmp_path, dict(own=dict(tables={}, set=dict(train_set='standin'))))
    with pytest.raises(LoGoSegUserError, match=r"'standin' is not prepared .*dvc repro prepare_dataset@standin"):
        load_row('own', 'smoke', root).fingerprint  # noqa: B018
    prepared_manifest(root, 'standin', 'v1')
    row = load_row('own', 'smoke', root)
    options = row.cfg_options()
    assert options['train_dataloader.dataset.type'] == 'DeclaredDataset'
    assert options['train_dataloader.dataset.name'] == options['val_dataloader.dataset.name'] == 'standin'
    assert options['train_dataloader.dataset.split'] == 'train' and options['val_dataloader.dataset.split'] is None
    first = row.fingerprint
    prepared_manifest(root, 'standin', 'v2')  # the data was prepared again from changed raw files
    assert load_row('own', 'smoke', root).fingerprint != first
    with pytest.raises(LoGoSegUserError, match=r"train_set 'mine'; use one of coco, pc59, ade150 or a dataset "
                                               r"declared in params.yaml \(standin\)"):
        load_row('own', 'smoke', grid_with(tmp_path, dict(own=dict(tables={}, set=dict(train_set='mine')))))


def test_load_from_a_row_starts_from_its_final_checkpoint_and_follows_its_version(tmp_path):
    root = grid_with(tmp_path, dict(full=dict(tables={}, set={}),
                                    tuned=dict(tables={}, set=dict(load_from='row:full'))))
    with pytest.raises(LoGoSegUserError, match=r"row 'tuned': load_from row:full: results/smoke/train/full/final.pth "
                                               r"not found; train that row first \(`dvc repro row@full`\)"):
        load_row('tuned', 'smoke', root).fingerprint  # noqa: B018
    final = root / 'results' / 'smoke' / 'train' / 'full' / 'final.pth'
    final.parent.mkdir(parents=True)
    final.write_bytes(b'weights 1')
    row = load_row('tuned', 'smoke', root)
    assert row.cfg_options()['load_from'] == 'results/smoke/train/full/final.pth'  # no path of this checkout
    assert row.params()['load_from'] == 'row:full' and load_row('full', 'smoke', root).params()['load_from'] == 'none'
    first = row.fingerprint
    final.write_bytes(b'weights 2')  # the base row was retrained
    assert load_row('tuned', 'smoke', root).fingerprint != first
    bad = grid_with(tmp_path, dict(tuned=dict(tables={}, set=dict(load_from='row:fulll'))))
    with pytest.raises(LoGoSegUserError, match="load_from row:fulll: no such row"):
        load_row('tuned', 'smoke', bad)


def test_declared_datasets_in_a_profiles_benchmarks_are_evaluated_and_their_version_re_evaluates(tmp_path):
    root = grid_with(tmp_path, dict(full=dict(tables={}, set={})),
                     benchmarks=['ade150', 'standin'])
    prepared_manifest(root, 'standin', 'v1')
    row = load_row('full', 'smoke', root)
    assert row.benchmarks == ('ade150', 'standin')
    training, evaluation = row.fingerprint, row.evaluation_fingerprint
    prepared_manifest(root, 'standin', 'v2')
    again = load_row('full', 'smoke', root)
    assert again.fingerprint == training and again.evaluation_fingerprint != evaluation  # re-evaluated, not retrained
    assert load_row('full', 'smoke', grid_with(tmp_path, dict(full=dict(tables={}, set={})),
                                               benchmarks=None)).benchmarks == BENCHMARKS
    with pytest.raises(LoGoSegUserError, match=r"smoke.benchmarks in params.yaml: 'ade20k' is neither a benchmark"):
        load_row('full', 'smoke', grid_with(tmp_path, dict(full=dict(tables={}, set={})), benchmarks=['ade20k']))


def test_a_row_starting_from_another_must_come_after_it(tmp_path):
    rows = dict(tuned=dict(tables={}, set=dict(load_from='row:full')), full=dict(tables={}, set={}))
    root = grid_with(tmp_path, rows)
    with pytest.raises(LoGoSegUserError, match="row 'full' must come before 'tuned' in experiments/rows.yaml"):
        load_row('tuned', 'smoke', root)


def test_a_row_trains_on_a_dataset_of_more_than_255_classes(tmp_path, monkeypatch):
    """300 classes: prepared labels are 16-bit with 65535 ignored, so the row's loss ignores 65535 (and class 255 is
    a class) and its batches are padded with 65535; two iterations train. With the configs' 255 the loss stops on
    the first ignored pixel (65535 is no class of the vocabulary)."""
    from mmengine.runner import Runner

    from logoseg.tools.prepare import declared

    from ..tools.test_prepare_declared import classes_map, picture, write_image, write_mask
    root = grid_with(tmp_path, dict(big=dict(tables={}, set=dict(train_set='big'))), benchmarks=list(BENCHMARKS))
    raw = root / 'datasets' / 'big'
    raw.mkdir(parents=True)
    (raw / 'classes.txt').write_text('\n'.join(f'class {i}' for i in range(300)))
    for i in range(2):
        write_image(raw / 'img' / f'x{i}', picture(i, 40, 48), 'jpeg')
        write_mask(raw / 'ann' / f'x{i}', classes_map(i, 40, 48, 300), '16bit', 65535)
    params = yaml.safe_load((root / 'params.yaml').read_text())
    params['datasets'] = {'big': {'raw': 'datasets/big', 'eval_split': 'train', 'ignore_index': 65535, 'splits': {
        'train': {'img_path': 'img', 'seg_map_path': 'ann'}}}}
    (root / 'params.yaml').write_text(yaml.safe_dump(params))
    assert declared.prepare(declared.load_declaration('big', root / 'params.yaml'),
                            root / 'prepared' / 'datasets' / 'big')
    monkeypatch.chdir(root)
    row = load_row('big', 'smoke', root)
    options = row.cfg_options()
    assert options['model.decode_head.ignore_index'] == options['model.data_preprocessor.seg_pad_val'] == 65535
    cfg = row.build_config()
    set_schedule(cfg, 2)
    cfg.train_dataloader.batch_size = 2
    cfg.visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                          name='big_vocabulary_visualizer')
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2 and (row.work_dir / 'iter_2.pth').is_file()
