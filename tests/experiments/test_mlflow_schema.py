"""What a run holds in MLflow, read back through MLflow's API: the schema in docs/mlflow.md,
metrics at the precision they mean, knob params that MLflow's charts can plot, none of mmengine's clutter."""
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from mmengine.config import Config

from logoseg.experiments.grid import LEARNABLE_LAMBDA_INIT, load_row, row_keys
from logoseg.experiments.tracking import (EVALUATION_METRICS, EXPERIMENT, TrackedMLflowVisBackend, TrackedRun,
                                          config_params, metric_value)

REPO = Path(__file__).resolve().parents[2]
KNOBS = yaml.safe_load((REPO / 'experiments' / 'rows.yaml').read_text())['knobs']
NAMED_KNOBS = ('backbone', 'train_set', 'load_from')  # names, not quantities: the only knobs that stay strings

# One iteration and one validation as mmengine's LoggerHook hands them to the vis backends (log_with_hierarchy),
# then one benchmark as TestMetricsHook sends it: values as float32, as MMSeg's metrics and the losses are.
TRAINING = {'train/lr': float(np.float32(2e-4)), 'train/base_lr': 2e-4, 'train/encoder_lr': 2e-6,
            'train/loss': np.float32(1.2345678), 'train/decode.loss_bce': np.float32(1.2345678),
            'train/time': 0.51234, 'train/data_time': 0.0123, 'train/iter': 4, 'train/memory': 1234}
VALIDATION = {'val/aAcc': np.float32(78.4), 'val/mIoU': np.float32(21.07), 'val/mAcc': np.float32(30.1),
              'val/hallucination_rate': 0.25, 'val/hallucinated_classes': 1.5, 'val/time': 0.2, 'val/data_time': 0.1}
TEST = {'ade150/mIoU': np.float32(11.61), 'ade150/aAcc': np.float32(60.33), 'ade150/mAcc': np.float32(17.9),
        'ade150/hallucination_rate': 0.5, 'ade150/hallucinated_classes': 0.6667, 'ade150/num_images': 3}
# what docs/mlflow.md's schema lists of them
LOGGED = {'loss', 'lr', 'encoder_lr', 'val/aAcc', 'val/mIoU', 'val/mAcc', 'val/hallucination_rate',
          'val/hallucinated_classes', 'ade150/mIoU', 'ade150/aAcc', 'ade150/mAcc', 'ade150/hallucination_rate',
          'ade150/hallucinated_classes'}


@pytest.fixture
def trained(store, tmp_path):
    """A grid row's run as a training fills it: the backend logs mmengine's scalars into the row's open run."""
    with TrackedRun('row', dict(row='schema')) as run:
        backend = TrackedMLflowVisBackend(save_dir=str(tmp_path / 'work' / 'vis_data'))
        backend.add_scalars(TRAINING, step=4)
        backend.add_scalars(VALIDATION, step=4)
        backend.add_scalars(TEST, step=0)
        run.log_metrics({'gflops': 12.345678901, 'latency_ms': 250.5})  # run_row's efficiency figures
        backend.close()
    return store.get_run(run.run_id)


def test_metrics_read_back_as_mmseg_reports_them_without_float32_noise(trained, store):
    assert float(np.float32(78.4)) == 78.4000015258789  # what the UI showed before
    metrics = trained.data.metrics
    assert metrics['val/aAcc'] == 78.4 and metrics['val/mIoU'] == 21.07 and metrics['ade150/mIoU'] == 11.61
    for name in ('val/aAcc', 'val/mIoU', 'val/mAcc', 'ade150/mIoU', 'ade150/aAcc', 'ade150/mAcc'):
        assert metrics[name] == round(metrics[name], 2), name
    assert metrics['val/hallucination_rate'] == 0.25 and metrics['ade150/hallucinated_classes'] == 0.6667
    # training curves at float32's 6 significant digits; measurements (float64) as they are
    assert metrics['loss'] == 1.23457 and metrics['lr'] == 2e-4 and metrics['encoder_lr'] == 2e-6
    assert metrics['gflops'] == 12.345678901 and metrics['latency_ms'] == 250.5
    [point] = store.get_metric_history(trained.info.run_id, 'val/aAcc')
    assert (point.value, point.step) == (78.4, 4)


def test_no_negative_zero():
    """A tiny negative rounds to -0.0, which the UI shows as -0."""
    for name, value in (('ade150/mIoU', -1e-9), ('val/hallucination_rate', -1e-9), ('loss', -0.0), ('gflops', -0.0)):
        logged = metric_value(name, value)
        assert logged == 0 and math.copysign(1, logged) == 1, name


def test_the_backend_logs_only_the_readmes_metrics(trained):
    """mmengine's base_lr, time, data_time, iter, memory, the loss term decode.loss_bce (a copy of loss),
    val/time and TestMetricsHook's num_images stay in the training log and scalars.json."""
    assert set(trained.data.metrics) == LOGGED | {'gflops', 'latency_ms'}
    doc = (REPO / 'docs' / 'mlflow.md').read_text()
    schema = doc[doc.index('**Schema**'):]
    for name in ('loss', 'lr', 'encoder_lr', 'val/M', 'B/M', *EVALUATION_METRICS, 'gflops', 'latency_ms'):
        assert f'`{name}`' in schema, name


def test_every_knob_of_every_grid_row_is_a_param_mlflow_charts(store):
    """MLflow's parallel-coordinates chart keeps only numeric params: a run whose axis value is a string (the
    Adapt. row's lambda `learnable`) silently drops out of it. Each row's params as run_row logs them."""
    keys = row_keys(REPO)
    for key in keys:
        with TrackedRun(key, dict(row=key)) as run:
            run.log_params(load_row(key, 'smoke', REPO).params())
    experiment = store.get_experiment_by_name(EXPERIMENT).experiment_id
    params = {run.data.tags['row']: run.data.params for run in store.search_runs([experiment], max_results=100)}
    assert sorted(params) == sorted(keys)
    numeric = [knob for knob in KNOBS if knob not in NAMED_KNOBS] + ['lambda_learnable']
    for key, logged in params.items():
        for knob in numeric:
            assert not math.isnan(float(logged[knob])), (key, knob, logged[knob])  # 'True', 'learnable' raise
        knobs = load_row(key, 'smoke', REPO).knobs
        assert [logged[knob] for knob in NAMED_KNOBS] == [knobs[knob] or 'none' for knob in NAMED_KNOBS]
    assert (params['t2_op']['ccf'], params['t2_op']['ra'], params['full']['ccf']) == ('0', '0', '1')
    assert {key: (params[key]['lambda'], params[key]['lambda_learnable'])
            for key in ('full', 't4_lambda0_r6', 't4_lambda05_r8', 't4_adapt_r6')} == {
        'full': ('1.0', '0'), 't4_lambda0_r6': ('0.0', '0'), 't4_lambda05_r8': ('0.5', '0'),
        't4_adapt_r6': (str(LEARNABLE_LAMBDA_INIT), '1')}


def test_a_learnable_lambda_param_is_the_priors_initial_value():
    from logoseg.models.region_alignment import ObjectPrior
    assert ObjectPrior('learnable').lam.item() == LEARNABLE_LAMBDA_INIT
    # mim train's runs (the backend's own params) follow the same schema
    cfg = Config.fromfile(str(REPO / 'configs' / 'logoseg_vitb.py'))
    cfg.merge_from_dict({'model.decode_head.prior_lambda': 'learnable'})
    params = config_params(cfg)
    assert (params['lambda'], params['lambda_learnable'], params['op']) == (LEARNABLE_LAMBDA_INIT, 1, 1)
    assert {str(params[knob]) for knob in ('op', 'ccf', 'ra', 'gc', 'da', 'prior_on_logits')} == {'1'}
