import pytest

from .stack import Processes, purge_product_queues


@pytest.fixture
def processes(tmp_path):
    """Subprocesses of one test, stopped at its end, starting from empty product queues."""
    procs = Processes(tmp_path)
    purge_product_queues()
    try:
        yield procs
    finally:
        procs.stop_all()
