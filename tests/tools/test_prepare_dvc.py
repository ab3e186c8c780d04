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


def test_one_stage_per_dataset_with_script_data_params_and_output():
    params = yaml.safe_load((REPO / 'params.yaml').read_text())
    prepare_stages = {k: v for k, v in stages().items() if k.startswith('prepare_')}
    assert sorted(prepare_stages) == sorted(f'prepare_{name}' for name in DATASETS)
    for name in DATASETS:
        stage = prepare_stages[f'prepare_{name}']
        assert stage['cmd'].startswith(f'python -m logoseg.tools.prepare.{name} --raw data/')
        assert stage['cmd'].endswith(f'--out {OUTS[name]}')
        deps = stage['deps']
        assert {f'projects/logoseg/tools/prepare/{name}.py', 'projects/logoseg/tools/prepare/common.py',
                'data'} <= set(deps)
        assert all((REPO / d).exists() for d in deps if d != 'data')
        assert stage['outs'] == [{OUTS[name]: {'persist': True}}]
        assert 'prepare.workers' in stage['params']
        for key in stage['params']:  # every tracked parameter exists
            node = params
            for part in key.split('.'):
                node = node[part]


def dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, 'DVC_NO_ANALYTICS': '1', 'PYTHONWARNINGS': 'ignore::UserWarning',
           'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', '')}
    return subprocess.run([sys.executable, '-m', 'dvc', *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_dvc_repro_runs_the_stage_and_reports_missing_data(tmp_path):
    work = tmp_path / 'repo'
    work.mkdir()
    for name in ('dvc.yaml', 'params.yaml'):
        shutil.copyfile(REPO / name, work / name)
    for dep in {d for stage in stages().values() for d in stage['deps'] if d != 'data'}:
        (work / dep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / dep, work / dep)
    raw = make_voc2012(work / 'data')
    assert dvc(['init', '--no-scm', '-q'], work).returncode == 0

    dag = dvc(['dag'], work)
    assert dag.returncode == 0 and all(f'prepare_{name}' in dag.stdout for name in DATASETS)

    run = dvc(['repro', '--force', 'prepare_voc20'], work)
    assert run.returncode == 0, run.stdout + run.stderr
    out = work / 'prepared' / 'voc20' / 'val'
    for sample in sorted((SAMPLES / 'voc2012_val' / 'SegmentationClassAug').glob('*.png')):
        raw_label = np.asarray(Image.open(raw / 'SegmentationClassAug' / sample.name)).astype(int)
        expected = np.where(raw_label == 0, 255, np.where(raw_label == 255, 255, raw_label - 1))
        np.testing.assert_array_equal(np.asarray(Image.open(out / sample.name)), expected)
    assert 'prepare_voc20' in yaml.safe_load((work / 'dvc.lock').read_text())['stages']
    status = dvc(['status', 'prepare_voc20'], work)
    assert status.returncode == 0 and 'up to date' in status.stdout

    # data/ exists but not the A-150 download: the stage's own command names it and where to get it
    missing = dvc(['repro', 'prepare_ade150'], work)
    assert missing.returncode != 0
    ours = [line for line in (missing.stdout + missing.stderr).splitlines() if line.startswith('error: ')]
    assert len(ours) == 1
    assert 'data/ADEChallengeData2016/annotations/validation is missing' in ours[0]
    assert 'http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip' in ours[0]
    assert not (work / 'prepared' / 'ade150').exists()
