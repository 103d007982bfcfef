"""Bring the metrics rollup up to date now (what the beat task does every minute), or rebuild it."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from metrics import rollup


class Command(BaseCommand):
    help = (
        "Recompute the metrics rollup's dirty days and roll up the days that left the live window. "
        "--rebuild forgets it and builds it again from the cases (after loading data directly)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="build the rollup again from scratch")

    def handle(self, *args, rebuild: bool = False, **options) -> None:
        started = time.monotonic()
        days = rollup.rebuild() if rebuild else rollup.refresh()
        self.stdout.write(f"Metrics rollup: {days:,} days recomputed in {time.monotonic() - started:.1f} s.")
