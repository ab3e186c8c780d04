"""Corrupt or truncated raw files: one line naming the file and what to re-download, no output, no traceback."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import tifffile

from logoseg.tools.prepare import pc59, pc459

from .prepare_fixtures import (ADE847_VAL, PC59_IMAGES, make_ade150, make_ade847, make_coco_stuff, make_pc59,
                               make_pc459, make_voc2012, write_ids)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def ade847_raw(root: Path) -> Path:
    return make_ade847(root, np.array([0, 1, 2, 2978, 3000]))[0]


def ade847_file(name: str, suffix: str) -> str:
    return f'images/ADE/validation/{ADE847_VAL[name][0]}/{name}{suffix}'


def pc59_raw(root: Path) -> Path:
    raw, _ = make_pc59(root)
    write_ids(root / 'ids.txt', ['2008_000002', '2008_000003'])
    return raw


def pc459_raw(root: Path) -> Path:
    rng = np.random.default_rng(0)
    raw = make_pc459(root, {stem: rng.integers(0, 460, (h, w)) for stem, (_, h, w) in PC59_IMAGES.items()})
    write_ids(root / 'ids.txt', ['2008_000002', '2008_000003'])
    return raw


def short_rle(path: Path) -> None:
    """The first mask's runs cover only part of its image (pycocotools would decode the rest from garbage)."""
    data = json.loads(path.read_text())
    data['annos_segmentation'][0]['segmentation']['counts'] = '0'
    path.write_text(json.dumps(data))


# (dataset, raw fixture, file below the raw root, damage, words of the fix, extra arguments)
CASES = {
    'ade847-seg-truncated': ('ade847', ade847_raw, ade847_file('ADE_val_00000002', '_seg.png'), truncate,
                             'ADE20K_2021_17_01.zip', []),
    'ade847-seg-garbage': ('ade847', ade847_raw, ade847_file('ADE_val_00000003', '_seg.png'), garbage,
                           'ADE20K_2021_17_01.zip', []),
    # short side 40 <= 512: kept at its size, so it used to be copied without decoding
    'ade847-small-jpeg-truncated': ('ade847', ade847_raw, ade847_file('ADE_val_00000001', '.jpg'), truncate,
                                    'ADE20K_2021_17_01.zip', []),
    'ade847-index-truncated': ('ade847', ade847_raw, 'index_ade20k.pkl', truncate, 'ADE20K_2021_17_01.zip', []),
    'ade847-index-garbage': ('ade847', ade847_raw, 'index_ade20k.pkl', garbage, 'ADE20K_2021_17_01.zip', []),
    'ade150-label-truncated': ('ade150', make_ade150, 'annotations/validation/ADE_val_00000002.png', truncate,
                               'ADEChallengeData2016.zip', []),
    'ade150-jpeg-truncated': ('ade150', make_ade150, 'images/training/ADE_train_00000003.jpg', truncate,
                              'ADEChallengeData2016.zip', []),
    'coco-label-garbage': ('coco_stuff', make_coco_stuff, 'annotations/train2017/000000000025.png', garbage,
                           'stuffthingmaps_trainval2017.zip', []),
    'coco-jpeg-truncated': ('coco_stuff', make_coco_stuff, 'images/val2017/000000000139.jpg', truncate,
                            'train2017.zip / val2017.zip', []),
    'voc-label-truncated': ('voc20', make_voc2012, 'SegmentationClassAug/voc_val_23.png', truncate,
                            'SegmentationClassAug', []),
    'voc-jpeg-garbage': ('voc20b', make_voc2012, 'JPEGImages/voc_val_23.jpg', garbage,
                         'VOCtrainval_11-May-2012.tar', []),
    'pc459-mat-truncated': ('pc459', pc459_raw, 'trainval/2008_000003.mat', truncate, 'trainval.tar.gz', ['ids']),
    'pc459-mat-garbage': ('pc459', pc459_raw, 'trainval/2008_000002.mat', garbage, 'trainval.tar.gz', ['ids']),
    'pc459-jpeg-truncated': ('pc459', pc459_raw, 'JPEGImages/2008_000003.jpg', truncate,
                             'VOCtrainval_03-May-2010.tar', ['ids']),
    'pc59-json-truncated': ('pc59', pc59_raw, 'trainval_merged.json', truncate, 'trainval_merged.json', ['ids']),
    'pc59-rle-short': ('pc59', pc59_raw, 'trainval_merged.json', short_rle, 'trainval_merged.json', ['ids']),
    'pc59-jpeg-truncated': ('pc59', pc59_raw, 'JPEGImages/2008_000008.jpg', truncate,
                            'VOCtrainval_03-May-2010.tar', ['ids']),
}


@pytest.mark.parametrize('case', list(CASES))
def test_corrupt_raw_file_is_one_line_and_leaves_no_output(tmp_path, capsys, case):
    name, make, relative, damage, fix, extra = CASES[case]
    raw = make(tmp_path / 'data')
    bad = raw / relative
    assert bad.is_file()
    damage(bad)
    out = tmp_path / 'prepared' / name
    argv = ['--raw', str(raw), '--out', str(out), '--workers', '2']
    if 'ids' in extra:  # a short validation list instead of the shipped 5104 ids
        argv += ['--ids', str(tmp_path / 'data' / 'ids.txt')]
    module = importlib.import_module(f'logoseg.tools.prepare.{name}')
    assert module.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('error: ') and str(bad) in lines[0], lines[0]
    assert 're-download' in lines[0] and fix in lines[0], lines[0]
    assert not out.exists()
    assert not (tmp_path / 'prepared').exists() or not any((tmp_path / 'prepared').iterdir())


def test_worker_process_failure_through_the_cli(tmp_path):
    """The real command with a process pool: the error crosses the worker boundary as one line."""
    raw = make_voc2012(tmp_path / 'data')
    bad = raw / 'JPEGImages' / 'voc_val_23.jpg'
    truncate(bad)
    out = tmp_path / 'prepared' / 'voc20'
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore::UserWarning'}
    result = subprocess.run(
        [sys.executable, '-m', 'logoseg.tools.prepare.voc20', '--raw', str(raw), '--out', str(out),
         '--workers', '2'], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f'error: {bad} is corrupt or truncated (')
    assert not out.exists() and list((tmp_path / 'prepared').iterdir()) == []


def test_replaced_raw_file_of_the_same_size_is_prepared_again(tmp_path):
    labels = {'2008_000002': np.full((30, 40), 5), '2008_000003': np.full((25, 20), 7)}
    raw = make_pc459(tmp_path / 'data', labels)
    ids = write_ids(tmp_path / 'ids.txt', list(labels))
    out = tmp_path / 'out'
    assert pc459.prepare(raw, out, ids_file=ids) is True
    mat = raw / 'trainval' / '2008_000002.mat'
    size, mtime = mat.stat().st_size, mat.stat().st_mtime_ns
    scipy.io.savemat(mat, {'LabelMap': np.full((30, 40), 9, np.uint16)})  # a new download: same shape and size
    os.utime(mat, ns=(mtime + 1, mtime + 1))  # deterministic: the replacement is only 1 ns newer
    assert mat.stat().st_size == size
    assert pc459.prepare(raw, out, ids_file=ids) is True
    assert (tifffile.imread(out / 'val' / '2008_000002.tif') == 8).all()
    assert pc459.prepare(raw, out, ids_file=ids) is False


def test_rle_runs_are_checked_before_pycocotools_decodes_them():
    mask = np.zeros((6, 5), bool)
    mask[2:4, 1:3] = True
    from .prepare_fixtures import rle
    encoded = rle(mask)
    assert sum(pc59.rle_counts(encoded['counts'])) == 30
    np.testing.assert_array_equal(pc59.decode_rle(encoded, 6, 5), mask)
    for counts, reason in (('0', 'do not cover'), (encoded['counts'][:-1] + 'y', 'character'),
                           (encoded['counts'] + 'P', 'truncated run')):
        with pytest.raises(ValueError, match=reason):
            pc59.decode_rle({'size': [6, 5], 'counts': counts}, 6, 5)
    with pytest.raises(ValueError, match='mask size'):
        pc59.decode_rle({'size': [5, 6], 'counts': encoded['counts']}, 6, 5)
