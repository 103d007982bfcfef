"""gunicorn's settings for SupportDesk, read from the working directory (``/app`` in the image).

Only what the product needs of gunicorn lives here; workers, timeouts and ports stay on the command
line (docker-compose.yml).

Prometheus: a scrape of /ops/metrics reaches one worker process, so each worker writes its request
histograms to files in ``PROMETHEUS_MULTIPROC_DIR`` and the answering worker sums them all
(prometheus-client's multiprocess mode). The folder must be set before the workers import the app and
must start empty: without the variable a fresh folder is made for this server and removed when it
stops; a folder the operator set is emptied at start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_own_metrics_dir: str | None = None

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    try:
        _own_metrics_dir = tempfile.mkdtemp(prefix="supportdesk-prometheus-")
    except OSError:  # nowhere to write: each worker then serves its own figures only
        _own_metrics_dir = None
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def on_starting(server) -> None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and path != _own_metrics_dir:
        # A previous run's files would be summed with this run's.
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
