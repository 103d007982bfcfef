"""Helpers for the import tests: run an import of a file in tests/imports/data with a fixed ``now``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from imports import services
from imports.mapping import default_mapping_text

DATA = Path(__file__).resolve().parent / "data"
#: The instant of every import in these tests: after all the fixture files' history.
IMPORTED_AT = dt.datetime(2023, 4, 1, tzinfo=dt.UTC)
MARCH = {"start": dt.datetime(2023, 3, 1, tzinfo=dt.UTC), "end": dt.datetime(2023, 4, 1, tzinfo=dt.UTC)}


def run(
    path: Path | str,
    *,
    format: str = "servicenow-csv",
    mapping_text: str | None = None,
    strict: bool = False,
    time_zone: str = "Europe/Berlin",
    now: dt.datetime = IMPORTED_AT,
    **kwargs,
):
    """Import ``path`` like the command does and return the finished job."""
    job = services.create_job(
        format=format,
        mapping_text=mapping_text or default_mapping_text(format),
        mapping_name="test",
        now=timezone.now(),
        path=str(path),
        strict=strict,
        time_zone=time_zone if format == "servicenow-csv" else "",
    )
    return services.run_import(job, now=now, **kwargs)


@pytest.fixture
def import_file(db):
    return run
