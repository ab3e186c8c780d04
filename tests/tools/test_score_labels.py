"""score_labels: `logoseg segment`'s label maps scored against a declared dataset with the evaluation's metric."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from logoseg.tools.score_labels import score_labels
from logoseg.utils.errors import LoGoSegUserError


def segment_like(prepared, tmp_path, change=None):
    """A labels/ folder as `segment` names it (the image's path below val/images, .png), from the truth."""
    labels = tmp_path / 'labels'
    for label in sorted((prepared / 'standin' / 'val' / 'labels').rglob('*.png')):
        target = labels / label.relative_to(prepared / 'standin' / 'val' / 'labels')
        target.parent.mkdir(parents=True, exist_ok=True)
        array = np.asarray(Image.open(label)).copy()
        array[array == 255] = 0  # segment predicts a class everywhere
        Image.fromarray(change(array) if change else array).save(target)
    return labels


def test_the_truth_scores_100_and_a_constant_prediction_its_direct_iou(prepared_standin, tmp_path):
    perfect = score_labels(segment_like(prepared_standin, tmp_path / 'a'), 'standin',
                           prepared_root=str(prepared_standin))
    assert perfect['mIoU'] == 100.0 and perfect['aAcc'] == 100.0 and perfect['num_images'] == 12
    assert perfect['hallucination_rate'] == 0.0
    constant = score_labels(segment_like(prepared_standin, tmp_path / 'b', np.zeros_like), 'standin',
                            prepared_root=str(prepared_standin))
    truth = np.concatenate([np.asarray(Image.open(p)).ravel()
                            for p in sorted((prepared_standin / 'standin' / 'val' / 'labels').rglob('*.png'))])
    valid = truth[truth != 255]
    sky = (valid == 0).sum() / valid.size  # predicting class 0 everywhere: IoU of class 0, 0 for the others
    present = len(np.unique(valid))
    assert constant['mIoU'] == pytest.approx(100 * sky / present, abs=0.01)


def test_missing_or_foreign_label_maps_are_one_line(prepared_standin, tmp_path):
    labels = segment_like(prepared_standin, tmp_path)
    victim = sorted(labels.rglob('*.png'))[3]
    victim.unlink()
    with pytest.raises(LoGoSegUserError, match=f'no label map {victim}'):
        score_labels(labels, 'standin', prepared_root=str(prepared_standin))
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(victim)
    with pytest.raises(LoGoSegUserError, match=r'holds class 7 but standin has 5 classes; segment with --vocab-file'):
        score_labels(labels, 'standin', prepared_root=str(prepared_standin))
    with pytest.raises(LoGoSegUserError, match="has no split 'training'"):
        score_labels(labels, 'standin', 'training', prepared_root=str(prepared_standin))


def test_the_command_prints_the_figures(prepared_standin, tmp_path):
    labels = segment_like(prepared_standin, tmp_path)
    shutil.copytree(prepared_standin, tmp_path / 'prepared' / 'datasets')
    proc = subprocess.run([sys.executable, '-m', 'logoseg.tools.score_labels', str(labels), '--dataset', 'standin'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'mIoU: 100.0' in proc.stdout.splitlines()[-1]
    proc = subprocess.run([sys.executable, '-m', 'logoseg.tools.score_labels', str(tmp_path / 'nope'), '--dataset',
                           'standin'], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f'logoseg: error: {tmp_path / "nope"} is not a folder; pass the labels/ folder that `logoseg segment --out '
        'OUT` wrote (OUT/labels)']
