"""Shared behaviour of the preparation scripts: idempotence, atomic output, process pool, errors and CLI."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from logoseg.tools.prepare import DATASETS, ade150, common
from logoseg.utils.errors import LoGoSegUserError

from .prepare_fixtures import REPO, make_ade150, tree


def test_second_run_rewrites_nothing(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    out = tmp_path / 'prepared' / 'ade150'
    assert ade150.prepare(raw, out) is True
    before = tree(out)
    assert len(before) == 7  # 6 labels + the completion marker
    assert ade150.main(['--raw', str(raw), '--out', str(out)]) == 0
    assert ade150.prepare(raw, out, workers=2) is False  # the worker count does not change the output
    assert tree(out) == before  # same bytes, same modification times
    assert sorted(p.name for p in out.parent.iterdir()) == ['ade150']


def test_changed_input_or_lost_output_file_reruns(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    out = tmp_path / 'out'
    ade150.prepare(raw, out)
    (out / 'validation' / 'ADE_val_00000001.png').unlink()
    assert ade150.prepare(raw, out) is True
    assert (out / 'validation' / 'ADE_val_00000001.png').is_file()
    (raw / 'annotations' / 'training' / 'ADE_train_00000003.png').unlink()
    (raw / 'images' / 'training' / 'ADE_train_00000003.jpg').unlink()
    assert ade150.prepare(raw, out) is True
    assert not (out / 'training' / 'ADE_train_00000003.png').exists()  # stale outputs go with the old tree
    assert ade150.prepare(raw, out, splits=['validation']) is True
    assert sorted(p.name for p in out.iterdir()) == ['.prepare.json', 'validation']


def fail_on_third(task, root, **kwargs):
    """Stands in for the per-image conversion of A-150: converts two images, then crashes."""
    if task[-1].endswith('00000003.png'):
        raise RuntimeError('simulated crash')
    original_convert(task, root, **kwargs)


original_convert = common.convert_png


def test_crash_leaves_no_output_and_next_run_succeeds(tmp_path, monkeypatch):
    raw = make_ade150(tmp_path / 'data')
    out = tmp_path / 'prepared' / 'ade150'
    stale = tmp_path / 'prepared' / '.ade150.tmp-999999999'  # a killed run's temporary (no such process)
    (stale / 'validation').mkdir(parents=True)
    (stale / '.prepare.json').write_text('{}')
    monkeypatch.setattr(common, 'convert_png', fail_on_third)
    with pytest.raises(RuntimeError, match='simulated crash'):
        ade150.prepare(raw, out, splits=['validation'])
    assert not out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == []  # own temporary removed, stale one cleaned up

    monkeypatch.setattr(common, 'convert_png', original_convert)
    assert ade150.prepare(raw, out, splits=['validation']) is True
    assert len(list((out / 'validation').iterdir())) == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ['ade150']


def test_crash_keeps_the_previous_complete_output(tmp_path, monkeypatch):
    raw = make_ade150(tmp_path / 'data')
    out = tmp_path / 'out'
    ade150.prepare(raw, out, splits=['validation'])
    before = tree(out)
    monkeypatch.setattr(common, 'convert_png', fail_on_third)
    with pytest.raises(RuntimeError):
        ade150.prepare(raw, out)  # both splits: a different output
    assert tree(out) == before


def test_parallel_equals_serial(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    ade150.prepare(raw, tmp_path / 'serial', workers=1)
    ade150.prepare(raw, tmp_path / 'parallel', workers=2)
    serial, parallel = tree(tmp_path / 'serial'), tree(tmp_path / 'parallel')
    assert {k: v[0] for k, v in serial.items()} == {k: v[0] for k, v in parallel.items()}


def test_worker_error_stops_the_run(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    (raw / 'annotations' / 'training' / 'ADE_train_00000002.png').write_bytes(b'not a png')
    with pytest.raises(LoGoSegUserError, match=r'ADE_train_00000002\.png is corrupt or truncated \(not an image'):
        ade150.prepare(raw, tmp_path / 'out', workers=2)
    assert not (tmp_path / 'out').exists()


def die_on_third(task, root, **kwargs):
    """Stands in for the per-image conversion of A-150: the worker process dies on the third image."""
    if task[-1].endswith('00000003.png'):
        os._exit(1)
    original_convert(task, root, **kwargs)


def test_dead_worker_is_one_line_and_leaves_no_output(tmp_path, monkeypatch, capsys):
    raw = make_ade150(tmp_path / 'data')
    out = tmp_path / 'prepared' / 'ade150'
    monkeypatch.setattr(common, 'convert_png', die_on_third)
    assert ade150.main(['--raw', str(raw), '--out', str(out), '--workers', '2']) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ['error: ade150: a worker process died (killed, out of memory, or crashed in a '
                                'decoder); nothing was written, run it again']
    assert list(out.parent.iterdir()) == []


def test_missing_raw_input_is_one_line_on_stderr(tmp_path):
    missing = tmp_path / 'data' / 'VOCdevkit' / 'VOC2012'
    # importing logoseg lets mmcv-lite warn about its missing CUDA ops; that is not this script's output
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore::UserWarning'}
    result = subprocess.run(
        [sys.executable, '-m', 'logoseg.tools.prepare.voc20', '--raw', str(missing), '--out', str(tmp_path / 'out')],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('error: VOC2012 val list not found: ')
    assert str(missing / 'ImageSets' / 'Segmentation' / 'val.txt') in lines[0]
    assert 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/' in lines[0]
    assert 'Traceback' not in result.stderr and not (tmp_path / 'out').exists()


@pytest.mark.parametrize('name, url', [
    ('coco_stuff', 'https://github.com/nightrome/cocostuff'),
    ('ade150', 'http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip'),
    ('ade847', 'https://ade20k.csail.mit.edu/'),
    ('pc59', 'https://www.cs.stanford.edu/~roozbeh/pascal-context/'),
    ('pc459', 'https://www.cs.stanford.edu/~roozbeh/pascal-context/'),
    ('voc20', 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/'),
    ('voc20b', 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/'),
])
def test_every_script_names_the_missing_input_and_its_download(tmp_path, capsys, name, url):
    assert name in DATASETS
    module = importlib.import_module(f'logoseg.tools.prepare.{name}')
    empty = tmp_path / 'raw'
    empty.mkdir()
    assert module.main(['--raw', str(empty), '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and str(empty) in err and url in err
    assert not (tmp_path / 'out').exists()


def test_bad_arguments_print_usage(capsys):
    for argv in (['--raw', 'r', '--out', 'o', '--workers', '0'], ['--raw', 'r'],
                 ['--raw', 'r', '--out', 'o', '--splits', 'test']):
        with pytest.raises(SystemExit) as exit_info:
            ade150.main(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.startswith('usage: python -m logoseg.tools.prepare.ade150')


def test_defaults_come_from_params_yaml(tmp_path, monkeypatch, capsys):
    raw = make_ade150(tmp_path / 'data')
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'params.yaml').write_text('prepare:\n  workers: 2\n  ade150:\n    splits: [validation]\n')
    assert common.load_params('ade150') == {'workers': 2, 'splits': ['validation']}
    assert ade150.main(['--raw', str(raw), '--out', 'out']) == 0
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['.prepare.json', 'validation']
    (tmp_path / 'params.yaml').write_text('prepare:\n  workers: 0\n')
    with pytest.raises(SystemExit):
        ade150.main(['--raw', str(raw), '--out', 'out'])
    assert '--workers must be an integer >= 1' in capsys.readouterr().err


def test_refuses_to_replace_a_directory_it_did_not_write(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'notes.txt').write_text('keep me')
    assert ade150.main(['--raw', str(raw), '--out', str(tmp_path / 'out')]) == 2
    assert (tmp_path / 'out' / 'notes.txt').read_text() == 'keep me'


def test_marker_records_the_run(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    out = tmp_path / 'out'
    ade150.prepare(raw, out, splits=['validation'])
    marker = json.loads((out / '.prepare.json').read_text())
    assert marker['dataset'] == 'ade150' and marker['files'] == 3
    assert marker['digest'] == common.digest(ade150.build_plan(raw, out, ['validation']))
    assert marker['digest'] != common.digest(ade150.build_plan(raw, out, ['validation', 'training']))
    assert str(REPO) not in (out / '.prepare.json').read_text()  # no machine-specific paths
