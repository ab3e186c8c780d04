"""The mmengine Runner state LoGoSeg needs and mmengine 0.10 offers no public API for, in one place.

Each function is tested against the installed mmengine with a real Runner (tests/engine/test_runner_state.py),
so a rename in an mmengine upgrade fails those tests instead of, say, a benchmark evaluating the previous
benchmark's dataset.
"""
from __future__ import annotations

from mmengine.config import Config
from mmengine.runner import BaseLoop, Runner


def is_training(runner: Runner) -> bool:
    """Whether ``runner``'s train loop exists: the public ``runner.train_loop`` would build it from its config
    (and its dataloader) in a test-only run."""
    return isinstance(runner._train_loop, BaseLoop)


def retarget_test(runner: Runner, cfg: Config) -> None:
    """Make ``runner``'s next ``test()`` use ``cfg``'s test loop, dataloader and evaluator, keeping its model
    and loaded checkpoint. ``Runner.test`` builds the loop from these three each time it is called; mmengine
    only takes them at construction."""
    runner._test_loop = cfg.test_cfg
    runner._test_dataloader = cfg.test_dataloader
    runner._test_evaluator = cfg.test_evaluator
