import pytest

from .smtp import SmtpServer
from .stack import Processes, free_port, purge_product_queues


@pytest.fixture
def processes(tmp_path):
    """Subprocesses of one test, stopped at its end, starting from empty product queues."""
    procs = Processes(tmp_path)
    purge_product_queues()
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on a free local port, for the workers to send to."""
    server = SmtpServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
