"""The slurm executor's settings from params.yaml and its refusals: one line each, saying what to do."""
from pathlib import Path

import pytest
import yaml

from logoseg.experiments import slurm, submit
from logoseg.utils.errors import LoGoSegUserError

from ..conftest import REPO


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """params.yaml and rows.yaml of the repository in a DVC repository of their own, the current directory."""
    (tmp_path / '.dvc').mkdir()
    (tmp_path / 'dvc.yaml').write_text('stages: {}\n')
    (tmp_path / 'experiments').mkdir()
    (tmp_path / 'experiments' / 'rows.yaml').write_text((REPO / 'experiments' / 'rows.yaml').read_text())
    (tmp_path / 'params.yaml').write_text((REPO / 'params.yaml').read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('DVC_ROOT', raising=False)
    return tmp_path


def edit(root: Path, **smoke):
    params = yaml.safe_load((root / 'params.yaml').read_text())
    for key, value in smoke.items():
        if key.startswith('slurm_'):
            params['smoke']['slurm'][key[len('slurm_'):]] = value
        else:
            params['smoke'][key] = value
    (root / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))


def test_the_shipped_profiles_run_locally_and_both_have_slurm_sections():
    params = yaml.safe_load((REPO / 'params.yaml').read_text())
    for profile in ('smoke', 'paper'):
        assert slurm.executor_kind(REPO, profile) == 'local'
        assert set(params[profile]['slurm']) == set(slurm.SlurmSettings.__dataclass_fields__)


def test_settings_become_submitit_parameters(checkout):
    edit(checkout, executor='slurm', gpus=4, slurm_partition='gpu', slurm_account='lab', slurm_qos='high',
         slurm_gpus_per_node=4, slurm_sbatch={'constraint': 'a100', 'exclude': 'node3'})
    settings = slurm.slurm_settings(checkout, 'smoke')
    parameters = settings.executor_parameters()
    assert parameters['slurm_partition'] == 'gpu' and parameters['slurm_account'] == 'lab'
    assert parameters['slurm_qos'] == 'high' and parameters['gpus_per_node'] == 4
    assert parameters['slurm_array_parallelism'] == 2 and parameters['timeout_min'] == 30
    assert parameters['slurm_additional_parameters'] == {'constraint': 'a100', 'exclude': 'node3'}
    # every key is one submitit's AutoExecutor knows: a generic one or slurm_<an sbatch parameter of submitit>
    from submitit.auto.auto import AutoExecutor
    from submitit.slurm.slurm import SlurmExecutor
    generic = set(AutoExecutor._valid_parameters()) if hasattr(AutoExecutor, '_valid_parameters') else set()
    generic |= {'timeout_min', 'nodes', 'tasks_per_node', 'cpus_per_task', 'mem_gb', 'gpus_per_node'}
    for key in parameters:
        assert key in generic or key.removeprefix('slurm_') in SlurmExecutor._valid_parameters(), key



def test_a_row_over_several_nodes_asks_each_for_its_share_of_the_gpus(checkout):
    """8 GPUs over 2 nodes: one task per node (the row's training step then starts 4 processes on each), and
    CPU rows (gpus_per_node 0) over nodes as the multi-node test on the test cluster runs them."""
    edit(checkout, executor='slurm', gpus=8, slurm_partition='gpu', slurm_nodes=2, slurm_gpus_per_node=4,
         slurm_cpus_per_task=16)
    parameters = slurm.slurm_settings(checkout, 'smoke').executor_parameters()
    assert (parameters['nodes'], parameters['tasks_per_node'], parameters['gpus_per_node']) == (2, 1, 4)
    edit(checkout, gpus=2, slurm_gpus_per_node=0)
    parameters = slurm.slurm_settings(checkout, 'smoke').executor_parameters()
    assert parameters['nodes'] == 2 and 'gpus_per_node' not in parameters


@pytest.mark.parametrize('smoke, message', [
    (dict(executor='kubernetes'),
     "unknown executor 'kubernetes' in params.yaml smoke.executor; use one of local, slurm"),
    (dict(executor='slurm'), 'params.yaml smoke.slurm.partition is missing'),
    (dict(executor='slurm', slurm_partition='cpu', slurm_time_min=0), 'smoke.slurm.time_min: 0; a positive integer'),
    (dict(executor='slurm', slurm_partition='cpu', slurm_sbatch='--exclusive'), 'smoke.slurm.sbatch: a mapping'),
    (dict(executor='local'), 'profile smoke runs locally'),
    (dict(executor='slurm', gpus=4, slurm_partition='gpu', slurm_gpus_per_node=2),
     'smoke.slurm.gpus_per_node: 2, but smoke.gpus: 4'),
    (dict(executor='slurm', slurm_partition='cpu', slurm_nodes=2),
     'smoke.slurm.nodes: 2, but smoke.gpus: 0 (training processes, one per GPU) do not split evenly'),
    (dict(executor='slurm', gpus=8, slurm_partition='gpu', slurm_nodes=2, slurm_gpus_per_node=8),
     'smoke.gpus: 8 over 2 node(s) is 4 training process(es) per node, one per GPU: set gpus_per_node: 4'),
    (dict(executor='slurm', gpus=8, slurm_partition='gpu', slurm_nodes=2, slurm_gpus_per_node=4,
          slurm_cpus_per_task=2), 'smoke.slurm.cpus_per_task: 2, fewer than the 4 training processes per node'),
])
def test_bad_settings_are_refused_in_one_line(checkout, capsys, smoke, message):
    edit(checkout, **smoke)
    assert submit.main(['--profile', 'smoke']) == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1 and err.startswith('logoseg: error: ')


@pytest.mark.parametrize('uri', ['', 'sqlite:////tmp/mlflow.db', 'file:///tmp/mlruns', '/tmp/mlruns'])
def test_a_file_store_is_refused_for_many_writers(uri):
    with pytest.raises(LoGoSegUserError, match='needs an MLflow tracking server') as error:
        slurm.check_tracking_server(uri)
    assert 'mlflow server' in str(error.value) and 'MLFLOW_TRACKING_URI' in str(error.value)


def test_an_unreachable_server_is_named(tmp_path):
    with pytest.raises(LoGoSegUserError, match=r'the tracking server http://127.0.0.1:9 .* does not answer'):
        slurm.check_tracking_server('http://127.0.0.1:9')
