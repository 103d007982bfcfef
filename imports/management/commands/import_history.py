"""Import a support team's history from the tool it leaves (see imports/README.md).

    manage.py import_history --format servicenow-csv [--mapping FILE] incidents.csv
    manage.py import_history --format xes --mapping my-log.toml log.xes.gz [--strict]

Shows a progress bar (rows or events per second, ETA) and ends with a summary: cases created,
updated and unchanged, events written, rejected cases with the line or trace of each problem.
The run is recorded as an import job, like one started from the page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from imports import services
from imports.mapping import DEFAULT_MAPPINGS, FORMATS, MappingError, load_mapping
from imports.models import JobStatus

PHASE_LABELS = {"sorting": "sorting", "checking": "checking", "importing": "importing"}


class Command(BaseCommand):
    help = "Import cases and their history from a ServiceNow incident export (CSV) or an XES event log."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The export file (.csv, .xes or .xes.gz).")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument(
            "--mapping",
            help="TOML mapping (default for servicenow-csv: imports/mappings/servicenow.toml; "
            "required for xes, see imports/mappings/xes-example.toml).",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Check the whole file first; import nothing if a row is bad.",
        )
        parser.add_argument("--tz", default="", help="Time zone of the file's dates (overrides the mapping).")
        parser.add_argument("--date-format", default="", help="strptime format of the dates (CSV).")
        parser.add_argument(
            "--batch-rows", type=int, default=services.BATCH_ROWS, help="Rows per transaction (about)."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(
        self, *args, path, format, mapping, strict, tz, date_format, batch_rows, no_progress, **options
    ):
        source = Path(path)
        if not source.is_file():
            raise CommandError(f"No such file: {path}")
        if mapping is None:
            if format == "xes":
                raise CommandError(
                    "An XES log needs --mapping: its activities are yours to name. "
                    f"Start from {DEFAULT_MAPPINGS['xes']}."
                )
            mapping_path = DEFAULT_MAPPINGS[format]
        else:
            mapping_path = Path(mapping)
        try:
            mapping_text = mapping_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read the mapping {mapping_path}: {exc.strerror or exc}") from exc
        try:
            load_mapping(mapping_text, format=format, source=mapping_path.name)
            job = services.create_job(
                format=format,
                mapping_text=mapping_text,
                mapping_name=str(mapping_path.name),
                now=timezone.now(),
                path=str(source.resolve()),
                strict=strict,
                time_zone=tz,
                date_format=date_format,
            )
        except MappingError as exc:
            raise CommandError("The mapping cannot be used:\n  " + "\n  ".join(exc.problems)) from exc

        bar = _Bar(enabled=not no_progress, unit=" events" if format == "xes" else " rows")
        try:
            job = services.run_import(job, now=timezone.now(), progress=bar.update, batch_rows=batch_rows)
        finally:
            bar.close()
        self._summary(job)
        if job.status == JobStatus.FAILED:
            raise CommandError(job.error or "The import failed.")

    def _summary(self, job) -> None:
        unit = "events" if job.format == "xes" else "rows"
        out = self.stdout
        out.write(f"Import #{job.pk} ({job.source_name}): {job.rows_read:,} {unit} read.")
        out.write(
            f"Cases: {job.cases_created:,} created, {job.cases_updated:,} with new updates, "
            f"{job.cases_unchanged:,} unchanged, {job.cases_rejected:,} rejected "
            f"({job.rows_rejected:,} bad {unit})."
        )
        out.write(f"Events: {job.events_created:,} written.")
        if job.rejections:
            shown = job.rejections[:20]
            out.write(
                self.style.WARNING(f"Rejected (first {len(shown)} of {job.cases_rejected + _keyless(job)}):")
            )
            for item in shown:
                # Each problem names its line or trace already.
                out.write(f"  {item['key'] or '(no key)'}: " + "; ".join(item["problems"]))
        if job.status == JobStatus.SUCCEEDED:
            out.write(self.style.SUCCESS("Done."))


def _keyless(job) -> int:
    return sum(1 for item in job.rejections if not item["key"])


class _Bar:
    """A tqdm bar per phase (sorting, checking, importing): rows or events per second and ETA."""

    def __init__(self, *, enabled: bool, unit: str) -> None:
        self.enabled = enabled
        self.unit = unit
        self.bar = None
        self.phase = None

    def update(self, phase, done, total, counters) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(
                total=total,
                desc=PHASE_LABELS.get(phase, phase),
                unit=self.unit,
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(
            cases=counters.cases_created + counters.cases_updated,
            events=counters.events_created,
            rejected=counters.cases_rejected,
            refresh=False,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
