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
