"""Single-threaded torch for these tests: the 2-core test machine is shared, and more threads than
free cores makes every small forward pass many times slower."""
import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
