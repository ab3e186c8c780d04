"""The prepare_* stages of dvc.yaml: declared per dataset, and runnable by the real `dvc repro`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from logoseg.tools.prepare import DATASETS

from .prepare_fixtures import REPO, SAMPLES, make_voc2012

OUTS = {'coco_stuff': 'prepared/coco_stuff171', 'ade150': 'prepared/ade150', 'ade847': 'prepared/ade847',
        'pc59': 'prepared/pc59', 'pc459': 'prepared/pc459', 'voc20': 'prepared/voc20', 'voc20b': 'prepared/voc20b'}


def stages() -> dict:
    return yaml.safe_load((REPO / 'dvc.yaml').read_text())['stages']


def test_one_stage_per_dataset_with_script_params_data_version_and_output():
    params = yaml.safe_load((REPO / 'params.yaml').read_text())
    for name in DATASETS:
        stage = stages()[f'prepare_{name}']
        assert stage['cmd'].startswith(f'python -m logoseg.tools.prepare.{name} --raw data/')
        assert stage['cmd'].endswith(f'--out {OUTS[name]}')
        deps = stage['deps']
        assert {f'projects/logoseg/tools/prepare/{name}.py', 'projects/logoseg/tools/prepare/common.py'} <= set(deps)
        assert all((REPO / d).is_file() for d in deps)
        assert {'experiments/data_version.yaml': ['outs.0.md5']} in stage['params']
        assert stage['outs'] == [{OUTS[name]: {'persist': True}}]
        assert 'prepare.workers' in stage['params']
        for key in (k for k in stage['params'] if isinstance(k, str)):  # every tracked parameter exists
            node = params
            for part in key.split('.'):
                node = node[part]
    # no stage at all depends on data/ or below: that would put data.dvc's data-source stage upstream, and
    # `dvc repro` would commit whatever data/ holds (an empty or partial download) into data.dvc
    for key, stage in stages().items():
        deps = stage.get('deps') or stage.get('do', {}).get('deps') or []
        assert not any(d == 'data' or d.startswith('data/') for d in deps), key
    # the recorded data version, read through a link because DVC refuses a .dvc file as a dependency
    assert os.readlink(REPO / 'experiments/data_version.yaml') == '../data.dvc'
    assert yaml.safe_load((REPO / 'data.dvc').read_text())['outs'][0]['path'] == 'data'


def clone(tmp_path: Path) -> Path:
    """A git repository holding this checkout's files (tracked and new, not ignored): no data/, no prepared/."""
    work = tmp_path / 'clone'
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split('\0')
    for name in filter(None, listed):
        src, dst = REPO / name, work / name
        if not src.is_symlink() and not src.is_file():
            continue  # deleted in the checkout, not yet in git
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    git = ['git', '-c', 'user.name=test', '-c', 'user.email=test@example.com']
    for args in (['init', '-q'], ['add', '-A'], ['commit', '-q', '-m', 'clone']):
        subprocess.run(git + args, cwd=work, check=True, capture_output=True)
    assert not (work / 'data').exists() and not (work / 'prepared').exists()
    return work


def dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The venv's dvc, its stages run with the venv's python and the clone's logoseg."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, 'DVC_NO_ANALYTICS': '1', 'PYTHONWARNINGS': 'ignore::UserWarning',
           'PYTHONPATH': str(cwd / 'projects'), 'PATH': f'{bin_dir}{os.pathsep}{os.environ.get("PATH", "")}'}
    return subprocess.run([str(bin_dir / 'dvc'), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def our_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith('error: ')]


def test_dvc_never_rewrites_data_dvc_and_names_the_fix(tmp_path):
    work = clone(tmp_path)
    recorded = (work / 'data.dvc').read_bytes()

    # fresh clone, no data/: the stage's command says to pull or download, in one line
    status = dvc(['status'], work)
    assert status.returncode == 0 and 'not in cache' in status.stdout
    missing = dvc(['repro', 'prepare_voc20'], work)
    assert missing.returncode != 0
    lines = our_lines(missing)
    assert len(lines) == 1, missing.stdout + missing.stderr
    assert 'data/ is missing' in lines[0] and '`dvc pull data.dvc`' in lines[0]
    assert 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/' in lines[0]
    assert 'Traceback' not in missing.stderr
    assert (work / 'data.dvc').read_bytes() == recorded

    # empty data/ (it used to become the recorded version: nfiles 1 -> 0)
    (work / 'data').mkdir()
    assert dvc(['repro'], work).returncode != 0  # stops at the first stage that lacks its data
    assert (work / 'data.dvc').read_bytes() == recorded
    lines = our_lines(dvc(['repro', 'prepare_ade150'], work))
    assert len(lines) == 1 and 'data/ADEChallengeData2016/annotations/validation is missing' in lines[0], lines
    assert 'http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip' in lines[0]
    assert '`dvc pull data.dvc`' in lines[0]
    assert not (work / 'prepared' / 'ade150').exists()
    assert (work / 'data.dvc').read_bytes() == recorded

    # partial data/ (PASCAL VOC only): its stage runs, nothing is recorded
    raw = make_voc2012(work / 'data')
    run = dvc(['repro', 'prepare_voc20'], work)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (work / 'data.dvc').read_bytes() == recorded
    out = work / 'prepared' / 'voc20' / 'val'
    for sample in sorted((SAMPLES / 'voc2012_val' / 'SegmentationClassAug').glob('*.png')):
        raw_label = np.asarray(Image.open(raw / 'SegmentationClassAug' / sample.name)).astype(int)
        expected = np.where(raw_label == 0, 255, np.where(raw_label == 255, 255, raw_label - 1))
        np.testing.assert_array_equal(np.asarray(Image.open(out / sample.name)), expected)
    status = dvc(['status', 'prepare_voc20'], work)
    assert status.returncode == 0 and 'up to date' in status.stdout
    assert (work / 'data.dvc').read_bytes() == recorded

    # recording is the user's explicit step; the stages then follow the recorded version
    assert dvc(['add', 'data'], work).returncode == 0
    assert yaml.safe_load((work / 'data.dvc').read_text())['outs'][0]['nfiles'] == 7
    status = dvc(['status', 'prepare_voc20'], work)
    assert 'experiments/data_version.yaml' in status.stdout and 'outs.0.md5' in status.stdout
