from types import SimpleNamespace

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.runner import BaseLoop

from logoseg.engine import VocabularyHook

from ..conftest import SMOKE_CLASSES


def loader(**metainfo):
    return SimpleNamespace(dataset=SimpleNamespace(metainfo=metainfo))


class Loop(BaseLoop):
    def run(self):
        pass


def test_vocabulary_follows_the_dataset_of_each_loop(build_tiny_model):
    model = build_tiny_model()
    runner = SimpleNamespace(
        model=model,
        train_dataloader=loader(classes=SMOKE_CLASSES),
        val_dataloader=loader(classes=('background', 'cat'), prompt_classes=('cat', 'sofa', 'wall'),
                              background_index=0),
        test_dataloader=loader(classes=('road', 'car')),
        _train_loop=None,
    )
    hook = VocabularyHook()
    hook.before_train(runner)
    assert model.vocabulary == SMOKE_CLASSES and model.background_index is None
    hook.before_val_epoch(runner)
    assert model.vocabulary == ('cat', 'sofa', 'wall') and model.background_index == 0
    runner._train_loop = Loop(runner, runner.train_dataloader)  # validation inside training
    hook.after_val_epoch(runner)
    assert model.vocabulary == SMOKE_CLASSES and model.background_index is None
    hook.before_test_epoch(runner)
    assert model.vocabulary == ('road', 'car')


def test_test_only_runs_do_not_build_a_train_loop(build_tiny_model):
    model = build_tiny_model()
    # no train_dataloader attribute: touching it (which would build the loop in a real runner) raises
    runner = SimpleNamespace(model=model, val_dataloader=loader(classes=('a', 'b')),
                             _train_loop=dict(type='IterBasedTrainLoop'))
    VocabularyHook().before_val_epoch(runner)
    VocabularyHook().after_val_epoch(runner)
    assert model.vocabulary == ('a', 'b')


def test_frozen_text_tower_is_left_out_of_the_optimizer(build_tiny_model, smoke_cfg):
    model = build_tiny_model()
    wrapper = build_optim_wrapper(model, smoke_cfg.optim_wrapper)
    optimised = {id(p) for group in wrapper.optimizer.param_groups for p in group['params']}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert optimised == trainable
    assert not optimised & {id(p) for p in model.text_encoder.parameters()}
    assert torch.is_tensor(next(iter(model.text_encoder.parameters())))


def test_resume_restores_the_checkpoints_random_state_before_the_first_new_batch():
    """Uninterrupted: batches 0..5 drawn from one random stream. Resumed at 3: mmengine re-draws batches 0..2
    to skip them (advancing the stream further), then the hook puts the checkpoint's state back, so batches
    3..5 are the uninterrupted run's."""
    import random

    import numpy as np
    import torch

    from logoseg.engine.hooks import _RestoreBeforeBatch, capture_rng_state

    def batches():
        while True:
            yield (random.random(), float(np.random.rand()), float(torch.rand(1)))

    def seed():
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)

    seed()
    stream = batches()
    uninterrupted = [next(stream) for _ in range(3)]
    saved = capture_rng_state()  # the checkpoint after iteration 3
    uninterrupted += [next(stream) for _ in range(3)]

    seed()
    for _ in range(7):  # the resumed process draws differently before training (model init, ...)
        torch.rand(1)
    resumed = _RestoreBeforeBatch(batches(), 3, saved)
    skipped = [next(resumed) for _ in range(3)]
    assert [next(resumed) for _ in range(3)] == uninterrupted[3:]
    assert skipped != uninterrupted[:3]  # without the restore, the stream would have moved on
