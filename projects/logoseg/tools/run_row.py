"""Train or evaluate one row of the ablation grid (the DVC stages ``train@<row>`` and ``evaluate@<row>``).

    python -m logoseg.tools.run_row train t4_lambda0_r8 [--profile smoke]
    python -m logoseg.tools.run_row evaluate t4_lambda0_r8

``train`` builds the row's config (``experiments/rows.yaml`` knobs on the profile's backbone config), opens
the row's MLflow run (marking a RUNNING one left by a killed process KILLED), trains with mmengine's Runner
(through ``torchrun`` when the profile asks for several GPUs), writes the training curve and, last,
``done.json``. A work dir without ``done.json`` is an unfinished training: rerunning resumes it from its
last checkpoint when the configuration is unchanged. A complete training with the same fingerprint (config,
model code, data version) is not redone.

``evaluate`` reopens that run, evaluates the final checkpoint on the six benchmarks (``evaluate_all``),
measures parameters, GFLOPs, latency and peak memory at the test protocol's input, and writes the metrics
JSON that DVC tracks. The run ends FINISHED only when all of it succeeded.
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
from ..engine.tracking import EXPERIMENT, TrackedRun, exit_status, mark_stale_runs, one_line, tracking_uri


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


def train(row: Row, launcher: str = 'none') -> None:
    from mmengine.runner import Runner
    cfg = row.build_config()
    fingerprint = row.fingerprint(cfg)
    if launcher == 'none' and row.done_file.is_file():
        done = json.loads(row.done_file.read_text())
        if done.get('fingerprint') == fingerprint and Path(done['checkpoint']).is_file():
            print(f'{row.key}: training complete with this configuration ({row.done_file}); not redone')
            write_curve(row)
            return
    state_file = row.work_dir / 'run.json'
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    resume = state.get('fingerprint') == fingerprint and (row.work_dir / 'last_checkpoint').is_file()
    if launcher == 'none' and not resume and row.work_dir.exists():
        shutil.rmtree(row.work_dir)  # another configuration's (or a finished) training: start afresh
    gpus = int(row.settings.get('gpus', 0) or 0)
    if launcher == 'none' and gpus > 1:
        return _train_distributed(row, gpus, fingerprint, state.get('run_id') if resume else None)

    run = None
    if launcher == 'none':
        run = start_run(row, state.get('run_id') if resume else None, row.work_dir / 'INCOMPLETE')
        row.work_dir.mkdir(parents=True, exist_ok=True)
        write_json(dict(run_id=run.run_id, fingerprint=fingerprint), state_file)
    try:
        cfg.resume = resume
        cfg.launcher = launcher
        runner = Runner.from_cfg(cfg)
        cfg.dump(str(row.work_dir / 'config.py'))
        runner.train()
        if launcher != 'none':
            return  # the parent process writes the results once every rank is done
        _finish_training(row, fingerprint, run.run_id)
    except BaseException as exc:
        if run is not None:
            status = exit_status(exc)
            run.finish(status, None if status == 'KILLED' else one_line(exc))
        raise
    # the run stays open for the evaluation stage; end it as a finished training until then
    run.finish('FINISHED')


def _train_distributed(row: Row, gpus: int, fingerprint: str, run_id: Optional[str]) -> None:
    """Run the training under torchrun (mmengine's ``pytorch`` launcher); this process owns the MLflow run."""
    with start_run(row, run_id, row.work_dir / 'INCOMPLETE') as run:
        row.work_dir.mkdir(parents=True, exist_ok=True)
        write_json(dict(run_id=run.run_id, fingerprint=fingerprint), row.work_dir / 'run.json')
        command = [sys.executable, '-m', 'torch.distributed.run', f'--nproc-per-node={gpus}',
                   '-m', 'logoseg.tools.run_row', 'train', row.key, '--profile', row.profile,
                   '--launcher', 'pytorch']
        result = subprocess.run(command, env=dict(os.environ, MLFLOW_RUN_ID=run.run_id))
        if result.returncode != 0:
            raise LoGoSegUserError(f'training of {row.key} failed in torchrun (exit {result.returncode}); '
                                   f'rerun to resume from its last checkpoint in {row.work_dir}')
        _finish_training(row, fingerprint, run.run_id)


def _finish_training(row: Row, fingerprint: str, run_id: str) -> None:
    last = (row.work_dir / 'last_checkpoint').read_text().strip()
    final = row.work_dir / 'final.pth'
    shutil.copyfile(last, final.with_suffix('.tmp'))
    final.with_suffix('.tmp').replace(final)
    write_curve(row)
    write_json(dict(run_id=run_id, fingerprint=fingerprint, checkpoint=str(final),
                    finished=time.strftime('%Y-%m-%dT%H:%M:%S')), row.done_file)


def efficiency(config: Path, checkpoint: Path) -> dict:
    """Parameters, GFLOPs (mmengine's complexity analysis), latency and peak memory of one test-protocol
    inference of ``config``'s model on an image of the test pipeline's input size."""
    import resource

    import torch
    from mmengine.analysis import FlopAnalyzer
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    cfg = Config.fromfile(str(config))
    init_default_scope('mmseg')
    cfg.model.clip.pretrained = None  # the checkpoint holds every weight
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(checkpoint), map_location='cpu', logger='silent')
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device).eval()
    size = _protocol_size(cfg)
    model.set_vocabulary(_dataset_classes(cfg))
    image = torch.rand(1, 3, *size, device=device) * 255
    inputs = model.data_preprocessor(dict(inputs=[image[0]], data_samples=None), False)['inputs']
    metas = [dict(img_shape=size, ori_shape=size, pad_shape=size, padding_size=[0, 0, 0, 0])]

    class Inference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.inference(x, metas)

    with torch.no_grad():
        Inference()(inputs)  # warm-up: text embeddings cached, allocator primed
        if device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            Inference()(inputs)
            if device == 'cuda':
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        flops = FlopAnalyzer(Inference(), inputs)
        flops.unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        gflops = flops.total() / 1e9
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == 'cuda' else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(params_total_M=sum(p.numel() for p in model.parameters()) / 1e6,
                params_trainable_M=sum(p.numel() for n, p in model.named_parameters()
                                       if not n.startswith('text_encoder.')) / 1e6,
                gflops=gflops, latency_ms=sorted(times)[1] * 1000, peak_mem_MB=peak,
                input=f'{size[0]}x{size[1]}')


def _protocol_size(cfg) -> tuple[int, int]:
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            scale = step['scale']
            return (int(scale[1]), int(scale[0]))
    return tuple(cfg.model.data_preprocessor.size)


def _dataset_classes(cfg) -> tuple[str, ...]:
    from mmseg.registry import DATASETS
    return DATASETS.get(cfg.train_dataloader.dataset.type).METAINFO['classes']


def evaluate(row: Row) -> None:
    from .evaluate_all import evaluate_all
    if not row.done_file.is_file():
        raise LoGoSegUserError(f'{row.key} has no finished training ({row.done_file} missing); run '
                               f'`dvc repro train@{row.key}`')
    done = json.loads(row.done_file.read_text())
    if row.metrics_file.exists():
        row.metrics_file.unlink()  # an old file must not pass for this evaluation's result
    run = open_run(row, done['run_id'])
    with run:
        if run.run_id != done['run_id']:
            write_json(dict(done, run_id=run.run_id), row.done_file)
        options = {}
        if row.settings.get('data_root'):
            options['test_dataloader.dataset.data_root'] = row.settings['data_root']
        results = evaluate_all(str(row.work_dir / 'config.py'), done['checkpoint'],
                               str(row.eval_dir / 'benchmarks_so_far.json'), work_dir=str(row.eval_dir),
                               cfg_options=options)
        results['efficiency'] = efficiency(row.work_dir / 'config.py', Path(done['checkpoint']))
        run.log_metrics({k: v for k, v in results['efficiency'].items() if k != 'input'})
        run.set_tags(dict(protocol_input=results['efficiency']['input']))
        write_json(results, row.metrics_file)
        run.log_artifact(row.metrics_file)
        run.log_artifact(row.work_dir / 'config.py')
        if row.curve_file.is_file():
            run.log_artifact(row.curve_file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.run_row', description=__doc__.split('\n')[0])
    parser.add_argument('stage', choices=['train', 'evaluate'])
    parser.add_argument('row', help='a key of experiments/rows.yaml, e.g. t4_lambda0_r8')
    parser.add_argument('--profile', choices=['smoke', 'paper'], help="default: params.yaml's profile")
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    row = load_row(args.row, args.profile)
    os.environ.setdefault('MLFLOW_TRACKING_URI', tracking_uri())
    if args.stage == 'train':
        train(row, args.launcher)
    else:
        evaluate(row)


if __name__ == '__main__':
    main()
