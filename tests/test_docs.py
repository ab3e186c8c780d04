"""The README's and docs' shell commands cannot drift: each is run by the suite, run here, or marked; links resolve.

Every ```python block runs as written (the main job's checkpoint replaced by a random one). Every line of a
```bash block in README.md and docs/*.md is a command, and is one of:
  (a) run by the suite in the same form: listed in RUN_BY_SUITE with the file that runs it and a string that
      file must contain (so the entry fails when that test stops running the command);
  (b) cheap: listed in RUN_HERE and run below as written, from the repository root;
  (c) marked in the doc by a tag at the start of its comment, ``command   # [tag] what it does``:
      [gpu] needs GPUs; [paper-scale] needs a paper-scale checkpoint, paper data or CPU hours;
      [needs-download] needs the raw datasets or a DVC remote; [server] starts a server that keeps running;
      [edits-checkout] changes the checkout's files or git state.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
TAGS = ('gpu', 'paper-scale', 'needs-download', 'server', 'edits-checkout')
TAG = re.compile(r'\s#\s\[(' + '|'.join(map(re.escape, TAGS)) + r')\]')

# command (a regular expression matched at its start) -> (file that runs it, text that file contains)
RUN_BY_SUITE = {
    r'python3 -m venv \.venv && .*dvc repro ablation_grid$': ('.ci/run', 'README.md'),
    r'\.venv/bin/python -m pytest$': ('.ci/run', 'README.md'),
    r'dvc repro ablation_grid\b': ('.ci/run', 'README.md'),  # the main job of the README's first block
    r'dvc repro row@': ('tests/test_grid_pipeline.py', "'repro', 'row@"),
    r"dvc exp run (--queue )?-S 'experiments/rows\.yaml:": ('tests/test_grid_pipeline.py', "'exp', 'run', '--queue'"),
    r'dvc exp show\b': ('tests/test_grid_pipeline.py', "'exp', 'show'"),
    r'dvc plots show\b': ('tests/analysis/test_dvc_plots.py', "'plots', 'show'"),
    r'\.venv/bin/python analysis/tables\.py$': ('tests/analysis/conftest.py', "'analysis' / 'tables.py'"),
    r'python -m logoseg\.experiments\.submit\b': ('tests/experiments/test_submit.py', "'logoseg.experiments.submit'"),
    r'python -m logoseg\.experiments\.status( --cancel)?$': ('tests/experiments/test_submit.py',
                                                             "'logoseg.experiments.status', '--cancel'"),
    # the smoke model's evaluation (docs/segment.md): the same commands on a test checkpoint
    r'python -m logoseg\.tools\.evaluate_all configs/smoke/': ('tests/evaluation/test_evaluate_all.py',
                                                               "'-m', 'logoseg.tools.evaluate_all'"),
    r'LOGOSEG_MODEL=\.\./smoke/logoseg_vitb\.py mim test ': ('tests/test_smoke_pipeline.py', "[MIM, 'test', 'mmseg'"),
    # a dataset of your own (docs/datasets.md), on the generated stand-in
    r'dvc repro prepare_dataset@standin$': ('tests/experiments/test_own_dataset.py',
                                            "'repro', 'prepare_dataset@standin'"),
    r'python -m logoseg\.tools\.prepare\.standin_dataset --out datasets/standin$': (
        'tests/tools/test_prepare_standin_dataset.py', "['standin_dataset', '--out', 'datasets/standin']"),
    r'LOGOSEG_DATASET=standin LOGOSEG_MODEL=\.\./smoke/logoseg_vitb\.py mim test mmseg configs/eval/dataset\.py ': (
        'tests/experiments/test_own_dataset.py', "LOGOSEG_DATASET='standin'"),
    r'logoseg segment prepared/datasets/standin/val/images --vocab-file prepared/datasets/standin/classes\.txt ': (
        'tests/experiments/test_own_dataset.py', "'segment', 'prepared/datasets/standin/val/images'"),
    r'python -m logoseg\.tools\.score_labels out/standin/labels --dataset standin$': (
        'tests/experiments/test_own_dataset.py', "'logoseg.tools.score_labels'"),
}
# command (exactly as in the doc, without its comment) -> what its output must contain
RUN_HERE = {
    'export MLFLOW_TRACKING_URI=http://$(hostname):5000': '',
    'dvc metrics show --md': '',
    'python -m logoseg.experiments.run_row --prune --dry-run': '',
}


def shell_commands() -> list[tuple[str, int, str]]:
    """(doc, line number, line) for every non-empty, non-comment line of a ```bash block."""
    found = []
    for doc in DOCS:
        inside = False
        for number, line in enumerate(doc.read_text(encoding='utf-8').splitlines(), 1):
            if line.lstrip().startswith('```'):  # a block may be indented under a list item
                inside = line.strip() in ('```bash', '```sh', '```shell') and not inside
                continue
            if inside and line.strip() and not line.lstrip().startswith('#'):
                found.append((str(doc.relative_to(REPO)), number, line))
    return found


def without_comment(line: str) -> str:
    return re.split(r'\s+#\s', line, maxsplit=1)[0].strip()


def test_every_shell_command_is_run_by_the_suite_run_here_or_marked():
    unaccounted = []
    for doc, number, line in shell_commands():
        command = without_comment(line)
        if TAG.search(line) or command in RUN_HERE or any(re.match(p, command) for p in RUN_BY_SUITE):
            continue
        unaccounted.append(f'{doc}:{number}: {command}')
    assert not unaccounted, (
        'shell commands in the docs that no test runs and no marker excuses:\n  ' + '\n  '.join(unaccounted)
        + '\nFor each: if it needs GPUs, paper-scale checkpoints/data/CPU hours, downloaded raw data or a DVC '
        'remote, starts a server, or edits the checkout, end its line with a comment starting with one of '
        + ', '.join(f'[{t}]' for t in TAGS) + " (e.g. `dvc pull   # [needs-download] fetch the data`); if it "
        'is cheap, add it to RUN_HERE in tests/test_docs.py; if a test runs it, add it to RUN_BY_SUITE there.')


@pytest.mark.parametrize('pattern', sorted(RUN_BY_SUITE))
def test_run_by_suite_entries_name_a_test_that_runs_the_command(pattern):
    commands = [without_comment(line) for _, _, line in shell_commands()]
    assert any(re.match(pattern, c) for c in commands), f'no doc command matches {pattern!r}: drop the entry'
    path, text = RUN_BY_SUITE[pattern]
    assert text in (REPO / path).read_text(encoding='utf-8'), f'{path} no longer runs {pattern!r} ({text!r})'


def test_every_marked_or_listed_command_is_in_a_doc():
    commands = {without_comment(line) for _, _, line in shell_commands()}
    assert set(RUN_HERE) <= commands, set(RUN_HERE) - commands


@pytest.mark.parametrize('command', sorted(RUN_HERE))
def test_cheap_doc_commands_run_as_written(command):
    bin_dir = str(Path(sys.executable).parent)  # the environment's python, dvc (the docs assume it is active)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get('PATH', ''),
               PYTHONPATH=str(REPO / 'projects') + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(['bash', '-c', command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert RUN_HERE[command] in proc.stdout


LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def test_every_relative_link_points_to_an_existing_file():
    broken = []
    for doc in [*DOCS, *sorted((REPO / 'experiments').glob('*.md'))]:
        text = re.sub(r'```.*?```', '', doc.read_text(encoding='utf-8'), flags=re.S)  # links in code are code
        # markdown links, and paths written relative to the doc in code spans (`../paper/x.md`)
        for target in LINK.findall(text) + re.findall(r'`(\.\.?/[^`\s]+)`', text):
            if re.match(r'[a-z][a-z0-9+.-]*:', target) or target.startswith('#'):
                continue  # a URL or an anchor in the same page
            path = target.split('#')[0]
            if not (doc.parent / path).exists():
                broken.append(f'{doc.relative_to(REPO)}: {target}')
    assert not broken, 'links to missing files:\n' + '\n'.join(broken)


SMOKE_GRID_CHECKPOINT = 'results/smoke/train/full/final.pth'  # the main job's full model, which the snippets load


def python_snippets() -> list:
    found = []
    for doc in DOCS:
        for block in re.findall(r'^```python\n(.*?)^```', doc.read_text(encoding='utf-8'), flags=re.M | re.S):
            found.append(pytest.param(str(doc.relative_to(REPO)), block, id=f'{doc.name}-{len(found)}'))
    return found


@pytest.fixture(scope='module')
def smoke_grid_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of configs/smoke/logoseg_vitb.py with random weights, standing in for the main job's."""
    path = tmp_path_factory.mktemp('snippets') / 'final.pth'
    code = ('import sys, torch, logoseg; from mmengine.config import Config; from logoseg.apis.model import '
            'build_model; torch.manual_seed(0); '
            "model = build_model(Config.fromfile('configs/smoke/logoseg_vitb.py')); "
            # as mmengine saves a training's checkpoint: the training classes in its meta
            "meta = dict(dataset_meta=dict(classes=('sky', 'grass'), palette=[[0, 0, 255], [0, 255, 0]])); "
            "torch.save(dict(state_dict=model.state_dict(), meta=meta), sys.argv[1])")
    subprocess.run([sys.executable, '-c', code, str(path)], cwd=REPO, check=True, timeout=300)
    return path


@pytest.mark.parametrize('doc, snippet', python_snippets())
def test_python_snippets_run_as_written(doc, snippet, smoke_grid_checkpoint):
    """Each ```python block runs from the repository root, the main job's checkpoint replaced by a random one."""
    code = snippet.replace(SMOKE_GRID_CHECKPOINT, str(smoke_grid_checkpoint))
    env = dict(os.environ, PYTHONPATH=str(REPO / 'projects') + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f'{doc}: {proc.stderr[-2000:]}'


def test_every_cli_names_its_program_as_the_docs_run_it_and_explains_each_option():
    """``--help`` shows ``usage: python -m logoseg.tools.x`` (not ``x.py``) and a line for every option."""
    import ast
    problems = []
    for path in sorted([*(REPO / 'projects' / 'logoseg').rglob('*.py'), *(REPO / 'analysis').rglob('*.py')]):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, 'attr', getattr(node.func, 'id', None))
            keywords = {k.arg for k in node.keywords}
            where = f'{path.relative_to(REPO)}:{node.lineno}'
            if name == 'ArgumentParser' and 'prog' not in keywords:
                problems.append(f"{where}: ArgumentParser without prog= (e.g. prog='python -m logoseg.tools.x')")
            if name == 'add_argument' and 'help' not in keywords:
                problems.append(f'{where}: {ast.unparse(node)[:80]} without help=')
    assert not problems, '\n'.join(problems)
