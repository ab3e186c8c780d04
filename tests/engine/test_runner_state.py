"""The Runner state without a public mmengine API (logoseg/engine/runner_state.py), on a real Runner: these fail
when an mmengine upgrade renames what the adapter relies on."""
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from logoseg.engine.runner_state import is_training, retarget_test


@MODELS.register_module(force=True)
class _Echo(BaseModel):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return dict(loss=(self.weight - inputs.float().mean()) ** 2)
        return [dict(value=float(x)) for x in inputs]


@DATASETS.register_module(force=True)
class _Numbers(Dataset):
    def __init__(self, values):
        self.values = values

    def __len__(self):
        return len(self.values)

    def __getitem__(self, index):
        return dict(inputs=torch.tensor(self.values[index]))


@METRICS.register_module(force=True)
class _Sum(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(sample['value'] for sample in data_samples)

    def compute_metrics(self, results):
        return dict(total=sum(results), count=len(results))


def loader(values):
    return dict(dataset=dict(type='_Numbers', values=values), batch_size=2, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False), collate_fn=dict(type='default_collate'))


def test_a_retargeted_runner_tests_the_new_dataset_with_the_new_evaluator(tmp_path):
    runner = Runner(model=dict(type='_Echo'), work_dir=str(tmp_path), test_dataloader=loader([1.0, 2.0, 3.0]),
                    test_cfg=dict(), test_evaluator=dict(type='_Sum', prefix='a'), default_scope='mmseg')
    assert runner.test() == {'a/total': 6.0, 'a/count': 3}
    assert not is_training(runner)  # a test-only run: asking did not build a train loop
    retarget_test(runner, Config(dict(test_dataloader=loader([10.0, 20.0]), test_cfg=dict(),
                                      test_evaluator=dict(type='_Sum', prefix='b'))))
    assert runner.test() == {'b/total': 30.0, 'b/count': 2}
    assert runner.test_dataloader.dataset.values == [10.0, 20.0]  # what VocabularyHook reads


def test_is_training_once_the_train_loop_runs(tmp_path):
    from mmengine.hooks import Hook
    seen = []

    class TrainingProbe(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.append(is_training(runner))

    runner = Runner(model=dict(type='_Echo'), work_dir=str(tmp_path), train_dataloader=loader([1.0, 2.0]),
                    train_cfg=dict(by_epoch=False, max_iters=1), optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                    custom_hooks=[TrainingProbe()], default_scope='mmseg')
    assert not is_training(runner)  # configured, not built
    runner.train()
    assert seen == [True]
