import pytest
import torch


@pytest.fixture(autouse=True, scope='package')
def one_thread():
    """Module tests use tiny tensors: intra-op threads only add synchronisation (slow on shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
