"""The entry point of the process that prepares an import's batches (``imports.services``).

The process is started with ``spawn``: a fresh interpreter that shares nothing with the importing
process (no sockets, no threads, no half-held locks), whatever that process runs beside the import
(a web server's threads, a live server in the tests, a worker's pool). It receives what it needs as
picklable data and sets Django up itself, so this module imports nothing of Django at import time:
it is unpickled before the app registry exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Environment:
    """What the preparing process sets Django up with: the importing process's settings, every one
    of them as it stands (so a test's overrides, such as the test database's name, hold there too,
    and the settings module is not evaluated again in another environment)."""

    settings: dict[str, Any]


def main(environment: Environment, channel) -> None:
    """Set Django up as ``environment`` says, then serve the import's batches through ``channel``."""
    from django.conf import settings

    settings.configure(**environment.settings)
    import django

    django.setup()
    from imports import services

    services.serve_batches(channel)
