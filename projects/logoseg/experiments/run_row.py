"""Train and evaluate one row of the ablation grid: the DVC stage ``row@<row>``.

    python -m logoseg.experiments.run_row t4_lambda0_r8 [--profile smoke]

Builds the row's config (``experiments/rows.yaml`` knobs on the profile's backbone config) and checks it by
building its model, before any output of the row is touched. Then it trains with mmengine's Runner
(through ``torchrun`` when the profile asks for several GPUs; in a job step over all nodes of a SLURM job that
spans several) in the configuration's own work dir
``results/<profile>/train/<row>/<fingerprint>/``, writes the training curve and ``done.json``, evaluates the
final checkpoint on the six benchmarks (``evaluate_all``), measures parameters, GFLOPs, latency and peak
memory at the test protocol's input, and writes the metrics JSON that DVC tracks, all in one MLflow run that
ends FINISHED only when all of it succeeded.

What a rerun does (nothing complete is ever deleted):
- an unfinished training of this configuration (no ``done.json``) resumes from its last checkpoint, in its
  own MLflow run;
- a complete training of this configuration is not redone, only evaluated again: in its run when that run
  did not finish, else in a new run of the row, so a failed re-evaluation leaves the FINISHED run, the
  metrics JSON and the tables as they were;
- trainings of other configurations stay in their own work dirs; switching a knob back finds them.
  ``python -m logoseg.experiments.run_row --prune`` removes those that no row's current configuration uses.

A failure prints one line naming the problem (the traceback goes to ``results/<profile>/logs/<row>.log``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from ..utils.errors import LoGoSegUserError
from ..utils.files import write_json
from .grid import PROFILES, Row, load_row, row_keys
from .preemption import install as install_preemption, run_training_child, with_preemption
from .spool import shown_uri, unreachable
from .repository import relative_to_repo, repo_root
from .slurm import NODES_ENV, check_process_layout, training_step
from .tracking import (EXPERIMENT, TrackedRun, interrupted, mark_stale_runs, one_line, tracked_metric,
                       tracking_uri)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('', 0))
        return probe.getsockname()[1]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def data_version(row: Row) -> str:
    if not row.data_manifest.is_file():
        raise LoGoSegUserError(f'{row.data_manifest} not found; run `dvc repro data_{row.profile}` first '
                               '(dvc repro ablation_grid runs it)')
    return json.loads(row.data_manifest.read_text())['version']


def start_run(row: Row, run_id: Optional[str] = None, marker: Optional[Path] = None,
              tags: Optional[dict] = None) -> TrackedRun:
    """Open (``run_id``) or create the row's run with its tags and params: the grid's knobs first, so
    mmengine's backend adds only the rest. A RUNNING run of the row left by a dead process is marked KILLED."""
    tags = dict(row.tags(), data_version=data_version(row), **(tags or {}))
    if os.environ.get('DVC_EXP_NAME'):
        tags['dvc_exp'] = os.environ['DVC_EXP_NAME']
    run = TrackedRun(row.key, tags, run_id=run_id, marker=marker)
    with store_needed():
        mark_stale_runs(run.client, EXPERIMENT, dict(row=row.key, profile=row.profile))
    run.start()
    run.log_params(row.params())
    for name in row.declared_datasets:  # what a user's data held when the row used it (docs/datasets.md)
        manifest = row.dataset_manifest(name)
        if manifest.is_file():
            run.set_tags({f'dataset.{name}': json.loads(manifest.read_text())['digest'][:12]})
            run.log_artifact(manifest, f'datasets/{name}')
    return run


def run_status(run_id: Optional[str]) -> Optional[str]:
    """Status of ``run_id`` in the store, None when the store does not have it (wiped, another machine)."""
    from mlflow import MlflowClient
    if not run_id:
        return None
    with store_needed():
        try:
            return MlflowClient(tracking_uri()).get_run(run_id).info.status
        except Exception as err:
            if getattr(err, 'error_code', None) == 'RESOURCE_DOES_NOT_EXIST':
                return None
            raise


@contextmanager
def store_needed():
    """Before a row starts, an unreachable tracking store stops it with one line (nothing has run yet);
    once it runs, an outage only queues its logging (``experiments/spool.py``)."""
    try:
        yield
    except Exception as err:
        reason = unreachable(err)
        if reason is None:
            raise
        raise LoGoSegUserError(f'MLflow tracking at {shown_uri(tracking_uri())} unreachable ({reason}); nothing '
                               'was run. Start the server (or unset MLFLOW_TRACKING_URI for the local mlflow.db) '
                               'and rerun') from None


def scalar_records(work_dir: Path) -> list[dict]:
    """mmengine's ``scalars.json`` records of every attempt of this training, in the order they were run."""
    files = sorted(work_dir.glob('*/vis_data/scalars.json'), key=lambda p: p.stat().st_mtime)
    return [json.loads(line) for path in files for line in path.read_text().splitlines() if line.strip()]


def write_curve(row: Row) -> None:
    """The training curve (iteration, loss, head learning rate) from mmengine's scalars.json, as a DVC plot."""
    points = {}
    for record in scalar_records(row.work_dir):
        loss = record.get('train/loss', record.get('loss'))
        if loss is not None:
            points[record['step']] = (loss, record.get('train/lr', record.get('lr')))
    row.curve_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = row.curve_file.with_name(f'.{row.curve_file.name}.tmp')
    with open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['iter', 'loss', 'lr'])
        for step in sorted(points):
            writer.writerow([step, *points[step]])
    tmp.replace(row.curve_file)


def log_curve(row: Row, run: TrackedRun) -> None:
    """Log the training's curves from its work dir into a run that did not see the training (a re-evaluation,
    or a run recreated after the store was lost): loss, learning rates and the validation figures, the metrics
    the vis backend logs during a training (:func:`.tracking.tracked_metric`)."""
    points: dict[tuple[str, int], float] = {}
    for record in scalar_records(row.work_dir):
        for key, value in record.items():
            name = key.removeprefix('train/')
            if tracked_metric(name) and isinstance(value, (int, float)):
                points[name, int(record['step'])] = float(value)  # a resumed attempt's value wins
    steps: dict[int, dict] = {}
    for (name, step), value in points.items():
        steps.setdefault(step, {})[name] = value
    for step in sorted(steps):
        run.log_metrics(steps[step], step)


def train_worker(row: Row, launcher: str) -> None:
    """One training process of several: under mmengine's ``pytorch`` launcher (a torchrun worker) or ``slurm``
    launcher (a task of the row's training step over several nodes). The parent owns run and outputs."""
    from mmengine.runner import Runner
    cfg = row.build_config()
    set_resume(cfg, read_json(row.work_dir / 'run.json')['resume'])
    cfg.launcher = launcher
    if launcher == 'slurm':
        print(f'logoseg: {row.key}: training process {os.environ["SLURM_PROCID"]} of {os.environ["SLURM_NTASKS"]} '
              f'on node {os.environ.get("SLURMD_NODENAME", "?")}', flush=True)
    Runner.from_cfg(with_preemption(cfg)).train()


def run_row(row: Row) -> None:
    """Train (or resume, or keep a complete training), then evaluate; see the module docstring."""
    cfg = row.build_config()  # checks the row: a bad knob stops here, with nothing touched
    fingerprint, work_dir = row.fingerprint, row.work_dir
    done = read_json(row.done_file)
    trained = done.get('fingerprint') == fingerprint and (work_dir / done.get('checkpoint', '')).is_file()
    state_file = work_dir / 'run.json'
    state = read_json(state_file)
    resume = not trained and state.get('fingerprint') == fingerprint and (work_dir / 'last_checkpoint').is_file()
    if read_json(row.metrics_file).get('run', {}).get('fingerprint') != fingerprint:
        row.metrics_file.unlink(missing_ok=True)  # another configuration's result must not pass for this one's
    if trained:
        run_id = done['run_id']
        status = run_status(run_id)
        recorded = read_json(row.metrics_file).get('run', {})
        if status == 'FINISHED' and recorded == dict(run_id=run_id, fingerprint=fingerprint,
                                                     evaluation=row.evaluation_fingerprint):
            print(f'{row.key}: trained and evaluated with this configuration and code (MLflow run {run_id}); '
                  'nothing to redo')
            publish_final(row)
            return
        if status is None or status == 'FINISHED':  # lost, or complete: a new run, the good one stays as it is
            with start_run(row, tags=dict(training_run=run_id)) as run:
                print(f'{row.key}: training complete with this configuration ({relative_to_repo(work_dir)}); '
                      f'evaluating it in a new run {run.run_id}')
                write_curve(row)
                log_curve(row, run)
                evaluate(row, run, work_dir / done['checkpoint'])
                write_json(dict(done, run_id=run.run_id), row.done_file)
            publish_final(row)
            return
        with start_run(row, run_id) as run:  # its evaluation did not finish: evaluate again in that run
            print(f'{row.key}: training complete with this configuration; evaluating it')
            write_curve(row)
            evaluate(row, run, work_dir / done['checkpoint'])
        publish_final(row)
        return
    run_id = state.get('run_id') if resume else None
    recreated = resume and run_status(run_id) is None
    with start_run(row, None if recreated else run_id, work_dir / 'INCOMPLETE') as run:
        if recreated:
            log_curve(row, run)
        work_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            relocate_last_checkpoint(work_dir)
        write_json(dict(run_id=run.run_id, fingerprint=fingerprint, resume=resume), state_file)
        train(row, cfg, run, resume)
        cfg.dump(str(work_dir / 'config.py'))
        _finish_training(row, fingerprint, run.run_id)
        evaluate(row, run, work_dir / 'final.pth')
    publish_final(row)


def train_base_first(row: Row) -> None:
    """A row fine-tuning from another row (``load_from: row:<base>``) whose base has no final checkpoint yet: run
    the base row first, here. DVC knows no order between two rows (one stage template), so ``dvc repro`` may reach
    the fine-tuned row first; the base row's own stage then finds it done."""
    if row.base_row and not row.load_from.is_file():
        base = load_row(row.base_row, row.profile, row.root)
        print(f'{row.key}: starts from row {base.key}, which has no final checkpoint yet: running {base.key} first')
        train_base_first(base)
        run_row(base)


def train(row: Row, cfg, run: TrackedRun, resume: bool) -> None:
    """Train in this process, or in ``gpus`` processes: through torchrun on this node, or, in a SLURM job over
    several nodes (``experiments.job``), in a step of the job over all of them."""
    from mmengine.runner import Runner
    processes = max(int(row.settings.get('gpus') or 0), 1)
    nodes = int(os.environ.get(NODES_ENV) or 1)
    worker = ['-m', 'logoseg.experiments.run_row', row.key, '--profile', row.profile, '--launcher']
    if processes > 1 or nodes > 1:
        env = dict(os.environ, MLFLOW_RUN_ID=run.run_id)
        if nodes > 1:
            check_process_layout(row.profile, processes, nodes)
            command, launcher = training_step([sys.executable, *worker, 'slurm'], processes, nodes), 'srun'
            env['MASTER_PORT'] = str(free_port())  # on the first node, where this runs and rank 0 will
        else:
            command = [sys.executable, '-m', 'torch.distributed.run', f'--nproc-per-node={processes}', *worker,
                       'pytorch']
            launcher = 'torchrun'
        code = run_training_child(command, env=env)
        if code != 0:
            raise LoGoSegUserError(f'training of {row.key} failed in {launcher} (exit {code}); rerun to resume '
                                   f'from its last checkpoint in {relative_to_repo(row.work_dir)}')
        return
    set_resume(cfg, resume)
    runner = Runner.from_cfg(with_preemption(cfg))
    runner.train()
    del runner


def set_resume(cfg, resume: bool) -> None:
    """Resume from the work dir's last checkpoint, or start afresh (from ``load_from``'s weights when the row
    fine-tunes). Given both, mmengine resumes *from* ``load_from``: its iteration and optimizer, not the row's."""
    cfg.resume = resume
    if resume:
        cfg.load_from = None


def relocate_last_checkpoint(work_dir: Path) -> None:
    """mmengine records the last checkpoint by absolute path: after the checkout moved, point it at the same
    file in this work dir, so the training resumes instead of failing."""
    pointer = work_dir / 'last_checkpoint'
    recorded = Path(pointer.read_text().strip())
    if not recorded.is_file() and (work_dir / recorded.name).is_file():
        pointer.write_text(str(work_dir / recorded.name))


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes ``source``'s file at once (a reader never sees half of it); a hard link where the file
    system allows, since a paper-scale checkpoint is GBs."""
    tmp = target.with_name(f'.{target.name}.tmp')
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(target)


def publish_final(row: Row) -> None:
    """``train/<row>/final.pth``: the checkpoint of the configuration the row last completed, at a path that
    does not change with the fingerprint (the README's commands, the predictor, the demo)."""
    link_or_copy(row.work_dir / 'final.pth', row.train_dir / 'final.pth')


def _finish_training(row: Row, fingerprint: str, run_id: str) -> None:
    link_or_copy(Path((row.work_dir / 'last_checkpoint').read_text().strip()), row.work_dir / 'final.pth')
    write_curve(row)
    write_json(dict(run_id=run_id, fingerprint=fingerprint, checkpoint='final.pth',
                    finished=time.strftime('%Y-%m-%dT%H:%M:%S')), row.done_file)


def prune(profile: str, dry_run: bool = False) -> list[Path]:
    """Remove the work dirs under ``results/<profile>/train/`` that no row's current configuration uses."""
    keep, removed = set(), []
    for key in row_keys():
        row = load_row(key, profile)
        keep.add(row.work_dir)
    for train_dir in sorted((repo_root() / 'results' / profile / 'train').glob('*')):
        for work_dir in sorted(p for p in train_dir.iterdir() if p.is_dir()):
            if work_dir not in keep:
                removed.append(work_dir)
                if not dry_run:
                    shutil.rmtree(work_dir)
    return removed


def efficiency(config: Path, checkpoint: Path) -> dict:
    """Size and speed of ``config``'s model with ``checkpoint``: parameters (total, trainable), GFLOPs of one
    forward at the model's input size (mmengine's complexity analysis, as MMSeg's ``get_flops``), and the
    latency and peak memory of one test-protocol inference (windows + global view) of an image of the test
    pipeline's size. Peak memory: CUDA's peak allocation, or on CPU the peak resident set of that inference."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from ..apis.model import build_model
    from ..tools.benchmark import peak_mb, reset_peak

    cfg = Config.fromfile(str(config))
    model = build_model(cfg)  # random CLIP weights: the checkpoint holds every weight
    load_checkpoint(model, str(checkpoint), map_location='cpu', logger='silent')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model.to(device).eval()
    model.set_vocabulary(_dataset_classes(cfg))
    size = _protocol_size(cfg)
    image = torch.rand(3, *size, device=device) * 255
    inputs = model.data_preprocessor(dict(inputs=[image], data_samples=None), False)['inputs']
    metas = [dict(img_shape=size, ori_shape=size, pad_shape=size, padding_size=[0, 0, 0, 0])]
    with torch.no_grad():
        model.inference(inputs, metas)  # warm-up: text embeddings cached, allocator primed
        baseline = reset_peak(device)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model.inference(inputs, metas)
            if device.type == 'cuda':
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        peak = peak_mb(device) - baseline
        crop = tuple(cfg.model.test_cfg.get('input_size') or cfg.model.data_preprocessor.size)
        analyzer = FlopAnalyzer(model, torch.zeros(1, 3, *crop, device=device))
        analyzer.unsupported_ops_warnings(False)  # norms, resizes: not counted, as in MMSeg's get_flops
        analyzer.uncalled_modules_warnings(False)  # the frozen text tower runs once per vocabulary
        flops = analyzer.total()
    return dict(params_total_M=sum(p.numel() for p in model.parameters()) / 1e6,
                params_trainable_M=sum(p.numel() for n, p in model.named_parameters()
                                       if not n.startswith('text_encoder.')) / 1e6,
                gflops=flops / 1e9, latency_ms=sorted(times)[1] * 1000, peak_mem_MB=peak,
                input=f'{size[0]}x{size[1]}', flops_input=f'{crop[0]}x{crop[1]}')


def _protocol_size(cfg) -> tuple[int, int]:
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            scale = step['scale']
            return (int(scale[1]), int(scale[0]))
    return tuple(cfg.model.data_preprocessor.size)


def _dataset_classes(cfg) -> tuple[str, ...]:
    from mmseg.registry import DATASETS

    from ..datasets.declared import load_manifest
    dataset = cfg.train_dataloader.dataset
    if dataset.type == 'DeclaredDataset':
        return tuple(load_manifest(dataset.name)['classes'])
    return DATASETS.get(dataset.type).METAINFO['classes']


def evaluate(row: Row, run: TrackedRun, checkpoint: Path) -> None:
    """The six benchmarks and the efficiency figures into ``run``, then the row's metrics JSON (replaced only
    when all of it succeeded: a failed evaluation leaves the previous result as it was)."""
    from ..tools.evaluate_all import evaluate_all
    results = evaluate_all(str(row.work_dir / 'config.py'), str(checkpoint),
                           str(row.eval_dir / 'benchmarks_so_far.json'), row.benchmarks, str(row.eval_dir),
                           row.test_options())
    results['efficiency'] = efficiency(row.work_dir / 'config.py', checkpoint)
    figures = results['efficiency']
    run.log_metrics({k: v for k, v in figures.items() if not k.endswith('input')})
    run.set_tags(dict(protocol_input=figures['input'], flops_input=figures['flops_input']))
    results['run'] = dict(run_id=run.run_id, fingerprint=row.fingerprint, evaluation=row.evaluation_fingerprint)
    for path in (row.work_dir / 'config.py', row.curve_file):
        run.log_artifact(path)
    write_json(results, row.metrics_file)
    run.log_artifact(row.metrics_file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m logoseg.experiments.run_row', description=__doc__.split('\n')[0])
    parser.add_argument('row', nargs='?', help='a key of experiments/rows.yaml, e.g. t4_lambda0_r8')
    parser.add_argument('--profile', choices=PROFILES, help="default: params.yaml's profile")
    parser.add_argument('--prune', action='store_true',
                        help="remove the trainings of configurations that no row of the profile uses now")
    parser.add_argument('--dry-run', action='store_true', help='with --prune: list them, remove nothing')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.row is None) != args.prune:
        parser.error('give a row, or --prune')
    return args


def run_repository_code(argv: list[str]) -> None:
    """Run the repository's own package: with an editable install of another clone (or of the workspace, in a
    DVC experiment's copy) the imported ``logoseg`` is not the code DVC tracks for this stage."""
    package = repo_root() / 'projects' / 'logoseg'
    here = Path(__file__).resolve().parents[1]
    if package.is_dir() and package.resolve() != here and not os.environ.get('LOGOSEG_REEXEC'):
        path = os.pathsep.join(filter(None, [str(package.parent), os.environ.get('PYTHONPATH')]))
        env = dict(os.environ, PYTHONPATH=path, LOGOSEG_REEXEC='1')
        os.execve(sys.executable, [sys.executable, '-m', 'logoseg.experiments.run_row', *argv], env)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    run_repository_code(argv)
    install_preemption()  # under SLURM (LOGOSEG_PREEMPTIBLE): checkpoint and exit on the preemption signal
    profile = args.profile
    row = None
    try:
        if args.prune:
            profile = profile or load_row(next(iter(row_keys())), None).profile
            for path in prune(profile, args.dry_run):
                print(f'{"would remove" if args.dry_run else "removed"} {relative_to_repo(path)}')
            return
        row = load_row(args.row, profile)
        os.environ.setdefault('MLFLOW_TRACKING_URI', tracking_uri())
        if args.launcher != 'none':
            train_worker(row, args.launcher)
        else:
            train_base_first(row)
            run_row(row)
    except Exception as err:
        if not interrupted(err):  # a library may turn Ctrl-C into its own error
            fail(args.row, row, err)
        stopped(args.row)
    except KeyboardInterrupt:
        stopped(args.row)


def stopped(name: Optional[str]) -> None:
    print(f'logoseg: {name}: interrupted; `dvc repro row@{name}` resumes it from its last checkpoint',
          file=sys.stderr)
    sys.exit(130)


def fail(name: Optional[str], row: Optional[Row], err: Exception) -> None:
    """One line on the terminal; the traceback in the row's log."""
    where = ''
    if row is not None:
        row.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(row.log_file, 'a', encoding='utf-8') as log:
            log.write(f'--- {time.strftime("%Y-%m-%dT%H:%M:%S")} {name}\n{traceback.format_exc()}')
        where = f' (traceback in {relative_to_repo(row.log_file)})'
    message = str(err) if isinstance(err, LoGoSegUserError) else one_line(err)
    print(f'logoseg: error: {name or "prune"}: {message}{where}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
    main()
