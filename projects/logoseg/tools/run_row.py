"""Train and evaluate one row of the ablation grid: the DVC stage ``row@<row>``.

    python -m logoseg.tools.run_row t4_lambda0_r8 [--profile smoke]

Builds the row's config (``experiments/rows.yaml`` knobs on the profile's backbone config), opens the row's
MLflow run (first marking a RUNNING one left by a killed process KILLED), trains with mmengine's Runner
(through ``torchrun`` when the profile asks for several GPUs), writes the training curve and ``done.json``,
then evaluates the final checkpoint on the six benchmarks (``evaluate_all``), measures parameters, GFLOPs,
latency and peak memory at the test protocol's input, and writes the metrics JSON that DVC tracks. The run
ends FINISHED only when all of it succeeded.

A work dir without ``done.json`` is an unfinished training: rerunning resumes it from its last checkpoint
when the configuration is unchanged. A complete training with the same fingerprint (config, model code,
data version) is not redone: after a change of evaluation code, or a switch of profiles and back, the row is
only evaluated again, in its own run.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from ..utils.errors import LoGoSegUserError
from ..engine.grid import Row, load_row, write_json
from ..engine.preemption import install as install_preemption, with_preemption
from ..engine.tracking import EXPERIMENT, TrackedRun, mark_stale_runs, tracking_uri


def data_version(row: Row) -> str:
    if not row.data_manifest.is_file():
        raise LoGoSegUserError(f'{row.data_manifest} not found; run `dvc repro data_{row.profile}` first '
                               '(dvc repro ablation_grid runs it)')
    return json.loads(row.data_manifest.read_text())['version']


def open_run(row: Row, run_id: Optional[str] = None, marker: Optional[Path] = None) -> TrackedRun:
    tags = row.tags()
    tags['data_version'] = data_version(row)
    if os.environ.get('DVC_EXP_NAME'):
        tags['dvc_exp'] = os.environ['DVC_EXP_NAME']
    run = TrackedRun(row.key, tags, run_id=run_id, marker=marker)
    mark_stale_runs(run.client, EXPERIMENT, dict(row=row.key, profile=row.profile))
    if run_id is not None:
        try:
            run.client.get_run(run_id)
        except Exception:  # the store was replaced (another machine, a wiped mlflow.db): start a new run
            run.run_id = None
    return run


def start_run(row: Row, run_id: Optional[str] = None, marker: Optional[Path] = None) -> TrackedRun:
    """Open the row's run with its params: the grid's knobs first, so mmengine's backend adds only the rest."""
    run = open_run(row, run_id, marker).start()
    run.log_params(row.params())
    return run


def write_curve(row: Row) -> None:
    """The training curve (iteration, loss, head learning rate) from mmengine's scalars.json, as a DVC plot."""
    files = sorted(row.work_dir.glob('*/vis_data/scalars.json'), key=lambda p: p.stat().st_mtime)
    records = [json.loads(line) for path in files for line in path.read_text().splitlines() if line.strip()]
    points = {}
    for record in records:
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


def train_worker(row: Row) -> None:
    """One torchrun worker: train under mmengine's ``pytorch`` launcher (the parent owns run and outputs)."""
    from mmengine.runner import Runner
    cfg = row.build_config()
    state = json.loads((row.work_dir / 'run.json').read_text())
    cfg.resume = state['resume']
    cfg.launcher = 'pytorch'
    Runner.from_cfg(with_preemption(cfg)).train()


def run_row(row: Row) -> None:
    """Train (or resume, or keep a complete training), then evaluate; one MLflow run throughout."""
    from mmengine.runner import Runner
    cfg = row.build_config()
    fingerprint = row.fingerprint(cfg)
    done = json.loads(row.done_file.read_text()) if row.done_file.is_file() else {}
    trained = done.get('fingerprint') == fingerprint and Path(done.get('checkpoint', '')).is_file()
    state_file = row.work_dir / 'run.json'
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    resume = not trained and state.get('fingerprint') == fingerprint \
        and (row.work_dir / 'last_checkpoint').is_file()
    if not trained and not resume and row.work_dir.exists():
        shutil.rmtree(row.work_dir)  # another configuration's training: start afresh
    if row.metrics_file.exists():
        row.metrics_file.unlink()  # an old file must not pass for this run's result
    run_id = done['run_id'] if trained else state.get('run_id') if resume else None
    with start_run(row, run_id, row.work_dir / 'INCOMPLETE') as run:
        if trained:
            print(f'{row.key}: training complete with this configuration ({row.done_file}); evaluating it')
            write_curve(row)
        else:
            row.work_dir.mkdir(parents=True, exist_ok=True)
            write_json(dict(run_id=run.run_id, fingerprint=fingerprint, resume=resume), state_file)
            gpus = int(row.settings.get('gpus') or 0)
            if gpus > 1:
                command = [sys.executable, '-m', 'torch.distributed.run', f'--nproc-per-node={gpus}', '-m',
                           'logoseg.tools.run_row', row.key, '--profile', row.profile, '--launcher', 'pytorch']
                result = subprocess.run(command, env=dict(os.environ, MLFLOW_RUN_ID=run.run_id))
                if result.returncode != 0:
                    raise LoGoSegUserError(f'training of {row.key} failed in torchrun (exit {result.returncode});'
                                           f' rerun to resume from its last checkpoint in {row.work_dir}')
            else:
                cfg.resume = resume
                runner = Runner.from_cfg(with_preemption(cfg))
                runner.train()
                del runner
            cfg.dump(str(row.work_dir / 'config.py'))
            _finish_training(row, fingerprint, run.run_id)
        done = json.loads(row.done_file.read_text())
        if done['run_id'] != run.run_id:  # the store lost the old run (wiped mlflow.db, another machine)
            write_json(dict(done, run_id=run.run_id), row.done_file)
        evaluate(row, run, Path(done['checkpoint']))


def _finish_training(row: Row, fingerprint: str, run_id: str) -> None:
    last = (row.work_dir / 'last_checkpoint').read_text().strip()
    final, tmp = row.work_dir / 'final.pth', row.work_dir / '.final.pth.tmp'
    tmp.unlink(missing_ok=True)
    try:
        os.link(last, tmp)  # a paper-scale checkpoint is GBs: share the file with mmengine's last one
    except OSError:
        shutil.copyfile(last, tmp)
    tmp.replace(final)
    write_curve(row)
    write_json(dict(run_id=run_id, fingerprint=fingerprint, checkpoint=str(final),
                    finished=time.strftime('%Y-%m-%dT%H:%M:%S')), row.done_file)


def efficiency(config: Path, checkpoint: Path) -> dict:
    """Size and speed of ``config``'s model with ``checkpoint``: parameters (total, trainable), GFLOPs of one
    forward at the model's input size (mmengine's complexity analysis, as MMSeg's ``get_flops``), and the
    latency and peak memory of one test-protocol inference (windows + global view) of an image of the test
    pipeline's size. Peak memory: CUDA's peak allocation, or on CPU the peak resident set of that inference."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    from .benchmark import peak_mb, reset_peak

    cfg = Config.fromfile(str(config))
    init_default_scope('mmseg')
    cfg.model.clip.pretrained = None  # the checkpoint holds every weight
    model = MODELS.build(cfg.model)
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
    return DATASETS.get(cfg.train_dataloader.dataset.type).METAINFO['classes']


def evaluate(row: Row, run: TrackedRun, checkpoint: Path) -> None:
    """The six benchmarks and the efficiency figures into ``run`` and the row's metrics JSON."""
    from .evaluate_all import evaluate_all
    options = {}
    if row.settings.get('data_root'):
        options['test_dataloader.dataset.data_root'] = row.settings['data_root']
    results = evaluate_all(str(row.work_dir / 'config.py'), str(checkpoint),
                           str(row.eval_dir / 'benchmarks_so_far.json'), work_dir=str(row.eval_dir),
                           cfg_options=options)
    results['efficiency'] = efficiency(row.work_dir / 'config.py', checkpoint)
    figures = results['efficiency']
    run.log_metrics({k: v for k, v in figures.items() if not k.endswith('input')})
    run.set_tags(dict(protocol_input=figures['input'], flops_input=figures['flops_input']))
    write_json(results, row.metrics_file)
    for path in (row.metrics_file, row.work_dir / 'config.py', row.curve_file):
        run.log_artifact(path)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.run_row', description=__doc__.split('\n')[0])
    parser.add_argument('row', help='a key of experiments/rows.yaml, e.g. t4_lambda0_r8')
    parser.add_argument('--profile', choices=['smoke', 'paper'], help="default: params.yaml's profile")
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    install_preemption()  # under SLURM (LOGOSEG_PREEMPTIBLE): checkpoint and exit on the preemption signal
    row = load_row(args.row, args.profile)
    os.environ.setdefault('MLFLOW_TRACKING_URI', tracking_uri())
    if args.launcher == 'pytorch':
        train_worker(row)
    else:
        run_row(row)


if __name__ == '__main__':
    main()
