"""Runner hooks."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from .runner_state import is_training


@HOOKS.register_module()
class VocabularyHook(Hook):
    """Prompt the model with the vocabulary of the dataset being run, so configs swap benchmarks freely.

    Reads ``metainfo['prompt_classes']`` (default ``metainfo['classes']``) and ``metainfo['background_index']``
    of the train, val or test dataset before that loop runs, and restores the training vocabulary after
    each validation.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _apply(runner, dataloader) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        meta = dataloader.dataset.metainfo
        model.set_vocabulary(meta.get('prompt_classes', meta['classes']), meta.get('background_index'))

    def before_train(self, runner) -> None:
        self._apply(runner, runner.train_dataloader)

    def before_val_epoch(self, runner) -> None:
        self._apply(runner, runner.val_dataloader)

    def after_val_epoch(self, runner, metrics=None) -> None:
        # only while training: asking a test-only runner for its train loop would build it
        if is_training(runner):
            self._apply(runner, runner.train_dataloader)

    def before_test_epoch(self, runner) -> None:
        self._apply(runner, runner.test_dataloader)


@HOOKS.register_module()
class TestMetricsHook(Hook):
    """Send test metrics to the visualizer's backends (MLflow), which mmengine's LoggerHook never does.

    Keys are ``<benchmark>/<metric>`` (``ade150/mIoU``): the dataset class's ``BENCHMARK`` name, so the six
    evaluations of one checkpoint land side by side in one run. Only scalar metrics are sent.
    """

    priority = 'LOW'

    def after_test_epoch(self, runner, metrics=None) -> None:
        if not metrics:
            return
        dataset = runner.test_dataloader.dataset
        prefix = getattr(dataset, 'BENCHMARK', None) or 'test'
        scalars = {}
        for key, value in metrics.items():
            try:
                scalars[f'{prefix}/{key}'] = float(value)
            except (TypeError, ValueError):
                continue
        scalars[f'{prefix}/num_images'] = len(dataset)
        runner.visualizer.add_scalars(scalars, step=0)


@HOOKS.register_module()
class EncoderLrHook(Hook):
    """Log the image encoder's learning rate as ``encoder_lr``, next to mmengine's ``lr`` (the head's).

    The name ends in ``lr`` so that mmengine's log processor prints it as a learning rate.
    """

    priority = 'VERY_HIGH'
    _group: dict | None = None  # the optimizer's parameter group of the image encoder

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        backbone = getattr(model, 'backbone', None)
        if optimizer is None or backbone is None:
            return
        trainable = {id(p) for p in backbone.parameters() if p.requires_grad}
        self._group = next((group for group in optimizer.param_groups
                            if any(id(p) in trainable for p in group['params'])), None)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._group is not None:  # the schedulers update group['lr'] in place
            runner.message_hub.update_scalar('train/encoder_lr', self._group['lr'])


@HOOKS.register_module()
class RngStateHook(Hook):
    """Resume a training with the random state it had at its checkpoint, so that it continues as the
    uninterrupted training would have (same augmentations, same dropout): a killed and resumed grid row ends
    with the same weights and metrics.

    The state of Python's, NumPy's and torch's generators is saved in every checkpoint. On resume, mmengine
    first skips the batches already trained on by loading them, which draws their random augmentations; the
    saved state is restored after that, just before the first new batch is loaded. Under DDP each rank
    restores rank 0's state (only rank 0 writes checkpoints).
    """

    priority = 'VERY_LOW'
    _saved: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._saved = checkpoint.get('rng_state')

    def before_train_epoch(self, runner) -> None:
        if self._saved is None:
            return
        loop = runner.train_loop
        loop.dataloader_iterator = _RestoreBeforeBatch(loop.dataloader_iterator, runner.iter, self._saved)
        self._saved = None


def capture_rng_state() -> dict:
    import random

    import numpy as np
    import torch
    state = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    import random

    import numpy as np
    import torch
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreBeforeBatch:
    """The train loop's batch iterator, restoring ``state`` before batch number ``skip`` (0-based) is loaded."""

    def __init__(self, iterator, skip: int, state: dict):
        self._iterator, self._skip, self._state = iterator, skip, state

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip == 0 and self._state is not None:
            restore_rng_state(self._state)
            self._state = None
        self._skip -= 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)
