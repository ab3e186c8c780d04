"""What the optimizer constructor builds and logs: the head's learning rate first, one line per custom key."""
import logging
from types import SimpleNamespace

import pytest
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper

from logoseg.engine import EncoderLrHook


@pytest.fixture
def log_lines():
    logger = MMLogger.get_instance('test_optim_constructor', log_level='INFO')  # becomes the current logger
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_one_summary_line_per_custom_key_instead_of_one_per_tensor(build_tiny_model, smoke_cfg, log_lines):
    model = build_tiny_model()
    build_optim_wrapper(model, smoke_cfg.optim_wrapper)
    assert not [line for line in log_lines if line.startswith('paramwise_options')]
    summary = [line for line in log_lines if line.startswith('paramwise_cfg.custom_keys')]
    encoder = sum(1 for p in model.backbone.parameters() if p.requires_grad)
    ss2d = sum(1 for n, _ in model.named_parameters() if 'global_context.A_log' in n)
    assert ss2d == 2  # one per fusion layer
    assert summary == [
        f"paramwise_cfg.custom_keys['backbone'] (lr_mult=0.01): {encoder} parameter tensors",
        f"paramwise_cfg.custom_keys['global_context.A_log'] (decay_mult=0.0): {ss2d} parameter tensors",
        f"paramwise_cfg.custom_keys['global_context.D'] (decay_mult=0.0): {ss2d} parameter tensors",
    ]


def test_logged_lr_is_the_heads_and_encoder_lr_the_encoders(build_tiny_model, smoke_cfg):
    model = build_tiny_model()
    wrapper = build_optim_wrapper(model, smoke_cfg.optim_wrapper)
    base_lr = smoke_cfg.optim_wrapper.optimizer.lr
    assert wrapper.get_lr()['lr'][0] == base_lr  # what mmengine logs as `lr`: the first group's rate
    first = wrapper.optimizer.param_groups[0]['params'][0]
    assert not any(first is p for p in model.backbone.parameters())

    runner = SimpleNamespace(model=model, optim_wrapper=wrapper,
                             message_hub=MessageHub.get_instance('test_encoder_lr'))
    hook = EncoderLrHook()
    hook.before_train(runner)
    for group in wrapper.optimizer.param_groups:  # as a scheduler would: the encoder keeps its x0.01
        group['lr'] *= 0.5
    hook.before_train_iter(runner, batch_idx=0)
    assert runner.message_hub.get_scalar('train/encoder_lr').current() == pytest.approx(base_lr * 0.01 * 0.5)
