"""The Celery application. Workers and beat start with ``celery -A supportdesk ...``."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import setup_logging

from supportdesk.core.logcontext import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")

app = Celery("supportdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (JSON with the task id), not Celery's format
    (a receiver here tells Celery to leave the root logger alone; LOG_LEVEL, not --loglevel, rules)."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


connect_celery_signals()  # each task's records carry its task_id and task_name


@app.on_after_configure.connect
def _create_filesystem_broker_folders(sender, **kwargs) -> None:
    """The server-less development broker keeps its messages in folders that must exist."""
    options = sender.conf.broker_transport_options or {}
    if str(sender.conf.broker_url or "").startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)
