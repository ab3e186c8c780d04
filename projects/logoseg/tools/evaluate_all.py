"""Evaluate one checkpoint on the six open-vocabulary benchmarks (and datasets of your own) and write their
figures to one JSON file.

    python -m logoseg.tools.evaluate_all configs/logoseg_vitb.py work_dirs/logoseg_vitb/iter_80000.pth \\
        --out metrics.json [--benchmarks ade150 pc59 mydata] [--work-dir DIR] [--skip-missing] [--cfg-options k=v]

A name in ``--benchmarks`` that is not a benchmark is a dataset declared in params.yaml (docs/datasets.md, "Your
own data"), evaluated zero-shot on its ``eval_split`` with ``configs/eval/dataset.py``; its figures are keyed by
its name as a benchmark's are.

Each benchmark runs ``configs/eval/<benchmark>.py`` (the model config with the benchmark's dataset and
``HallucinationIoUMetric``) through mmengine's Runner, as ``mim test`` would; one Runner serves all six (the
model is built and the checkpoint loaded once; each benchmark swaps in its dataloader and metric). Output:
``{benchmark: {mIoU, aAcc, mAcc, hallucination_rate, hallucinated_classes, num_images}}``, mIoU / aAcc /
mAcc in percent as MMSeg reports them, the hallucination figures as fractions / counts per image. The file
is rewritten after every benchmark, so finished ones survive an interrupted run. The figures also go to one
MLflow run (``<benchmark>/mIoU``, ...), FINISHED only when every benchmark was evaluated.

Every benchmark's data is checked before the first one runs: a missing one stops with the one-line
dataset error, or with ``--skip-missing`` is recorded as ``{"missing": "<that error>"}`` and skipped.
Multi-GPU: ``torchrun --nproc-per-node 4 -m logoseg.tools.evaluate_all ... --launcher pytorch``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from pathlib import Path
from typing import Optional, Sequence

import yaml

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import DATASETS

from ..datasets import DatasetNotFoundError
from ..datasets.benchmarks import BENCHMARKS
from ..experiments.repository import relative_to_repo, repo_root
from ..experiments.tracking import TrackedRun
from ..engine.runner_state import retarget_test
from ..utils.errors import LoGoSegUserError
from ..utils.files import write_json

REPORTED = ('mIoU', 'aAcc', 'mAcc', 'hallucination_rate', 'hallucinated_classes')


def declared_datasets() -> tuple[str, ...]:
    """The names under ``datasets:`` in the working repository's params.yaml (docs/datasets.md)."""
    params = repo_root() / 'params.yaml'
    if not params.is_file():
        return ()
    with open(params, encoding='utf-8') as f:
        return tuple((yaml.safe_load(f) or {}).get('datasets') or {})


def check_names(names: Sequence[str]) -> None:
    """Every name is a benchmark or a declared dataset; else one line listing both."""
    declared = declared_datasets()
    unknown = [name for name in names if name not in BENCHMARKS and name not in declared]
    if unknown:
        raise LoGoSegUserError(f'unknown benchmark or dataset {", ".join(map(repr, unknown))}: the benchmarks are '
                               f'{", ".join(BENCHMARKS)}; datasets declared in params.yaml: '
                               f'{", ".join(declared) or "none"} (docs/datasets.md, "Your own data")')


def load_eval_config(benchmark: str, model_config: str, cfg_options: Optional[dict] = None) -> Config:
    """``configs/eval/<benchmark>.py`` with ``model_config`` as its model (the LOGOSEG_MODEL variable); for a
    declared dataset, ``configs/eval/dataset.py`` with it as LOGOSEG_DATASET."""
    variables = {'LOGOSEG_MODEL': model_config}
    if benchmark not in BENCHMARKS:
        variables['LOGOSEG_DATASET'] = benchmark
        benchmark = 'dataset'
    path = repo_root() / 'configs' / 'eval' / f'{benchmark}.py'  # the checkout being worked on
    if not path.is_file():
        raise LoGoSegUserError(f'evaluation config {path} not found; run from a LoGoSeg source checkout')
    if not osp.isfile(model_config):
        raise LoGoSegUserError(f'model config not found at {model_config}; give a file such as '
                               'configs/logoseg_vitb.py')
    variables['LOGOSEG_MODEL'] = osp.abspath(model_config)  # eval configs resolve it from their own folder
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        cfg = Config.fromfile(str(path))
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def check_data(cfg: Config) -> None:
    """Build the test dataset once: raises DatasetNotFoundError (one line) when its data is not prepared."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))  # pipeline names resolve as the Runner's will
    DATASETS.build(dict(cfg.test_dataloader.dataset, serialize_data=False))  # a check: skip packing the list


def run_benchmark(cfg: Config, checkpoint: str, work_dir: str, launcher: str = 'none',
                  runner: Optional[Runner] = None) -> tuple[dict, Runner]:
    """Test ``checkpoint`` with the Runner of ``cfg``; returns the reported figures and the Runner.

    Given the ``runner`` of a previous benchmark, it is reused: the model is built and the checkpoint loaded
    once. An eval config differs from another only in its test dataloader and evaluator (configs/eval), which
    mmengine's Runner builds from these three keys at each ``test()``.
    """
    if runner is None:
        cfg.load_from = checkpoint
        cfg.work_dir = work_dir
        cfg.launcher = launcher
        runner = Runner.from_cfg(cfg)
    else:
        retarget_test(runner, cfg)
    metrics = runner.test()
    result = {key: round(float(metrics[key]), 4) for key in REPORTED}  # MMSeg's float32 -> plain JSON
    result['num_images'] = len(runner.test_dataloader.dataset)
    return result, runner


def evaluate_all(model_config: str, checkpoint: str, out: str, benchmarks: tuple[str, ...] = BENCHMARKS,
                 work_dir: Optional[str] = None, cfg_options: Optional[dict] = None, skip_missing: bool = False,
                 launcher: str = 'none') -> dict:
    """Evaluate ``checkpoint`` on ``benchmarks`` in order; returns (and writes to ``out``) the results.

    Raises:
        LoGoSegUserError: a name that is neither a benchmark nor a declared dataset, missing checkpoint or
            config, or (without ``skip_missing``) a benchmark whose data is not prepared; nothing is evaluated
            then.
    """
    check_names(benchmarks)
    if not osp.isfile(checkpoint):
        raise LoGoSegUserError(f'checkpoint not found at {checkpoint}; train one (docs/training.md) or '
                               'give the path of a downloaded one')
    work_dir = work_dir or osp.join('work_dirs', 'evaluate_all', Path(model_config).stem)
    configs, results = {}, {}
    for benchmark in benchmarks:
        cfg = load_eval_config(benchmark, model_config, cfg_options)
        try:
            check_data(cfg)
        except DatasetNotFoundError as err:
            if not skip_missing:
                raise
            results[benchmark] = {'missing': str(err)}
            continue
        configs[benchmark] = cfg
    runner = None
    for benchmark, cfg in configs.items():
        results[benchmark], runner = run_benchmark(cfg, checkpoint, work_dir, launcher, runner)
        if is_main_process():
            write_json({name: results[name] for name in benchmarks if name in results}, out)
    if not configs and is_main_process():
        write_json(results, out)
    return {name: results[name] for name in benchmarks}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.evaluate_all',
                                     description='Evaluate a checkpoint on the six open-vocabulary benchmarks.')
    parser.add_argument('model_config', help='model config, e.g. configs/logoseg_vitb.py')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--out', required=True, help='JSON file for {benchmark: metrics}')
    parser.add_argument('--benchmarks', nargs='+', default=list(BENCHMARKS), metavar='NAME',
                        help=f'benchmarks ({", ".join(BENCHMARKS)}) and datasets declared in params.yaml to run, '
                             'in this order (default: the six benchmarks)')
    parser.add_argument('--work-dir', help='logs of the evaluation (default work_dirs/evaluate_all/<config name>)')
    parser.add_argument('--skip-missing', action='store_true',
                        help='record benchmarks whose data is not prepared as missing instead of stopping')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every benchmark config, key=value as in mim test')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='like mim test')
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> None:
    args = parse_args(argv)

    def run() -> None:
        evaluate_all(args.model_config, args.checkpoint, args.out, tuple(args.benchmarks), args.work_dir,
                     args.cfg_options, args.skip_missing, args.launcher)

    if 'MLFLOW_RUN_ID' in os.environ or os.environ.get('RANK', '0') != '0':
        run()  # a grid row's run (or rank 0's) receives the metrics
        return
    # one MLflow run for the whole evaluation: the Runner of each benchmark logs <benchmark>/<metric> into it
    tags = dict(kind='evaluation', checkpoint=relative_to_repo(args.checkpoint))
    with TrackedRun(f'evaluate-{Path(args.model_config).stem}', tags) as tracked:
        run()
        tracked.log_artifact(args.out)


if __name__ == '__main__':
    main()
