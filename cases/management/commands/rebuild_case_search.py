"""Rebuild every case's search document (cases/search.py), in batches of case ids.

Idempotent and safe beside the running application: each batch is one short transaction that
replaces the documents of its cases from their rows. Use it after loading cases without the services
(``generate_cases``, a restore) or to catch cases written while the 0009 migration ran.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from cases import search


class Command(BaseCommand):
    help = "Rebuild the case search documents (batched, idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch", type=int, default=20_000, help="Case ids per transaction (default 20000)."
        )

    def handle(self, *args, batch: int, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        started = time.monotonic()

        def progress(written: int, last_id: int) -> None:
            if options["verbosity"] >= 2:
                self.stdout.write(f"  {written:,} documents written (cases up to id {last_id:,})")

        written = search.rebuild(batch=batch, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {written:,} case search documents in {time.monotonic() - started:.1f} s."
            )
        )
