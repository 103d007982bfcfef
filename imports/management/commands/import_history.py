"""Import a support team's history from the tool it leaves (see imports/README.md).

    manage.py import_history --format servicenow-csv [--mapping FILE] incidents.csv
    manage.py import_history --format xes --mapping my-log.toml log.xes.gz [--strict]
    manage.py import_history --format xes --mapping my-log.toml log.xes.gz --check

Shows a progress bar (rows or events per second, ETA) and ends with a summary: cases created,
updated and unchanged, events written, every adjustment made to the source's history (by kind,
with example keys), rejected cases with the line or trace of each problem. The run is recorded
as an import job, like one started from the page. ``--check`` reads the whole file and lists every
problem by kind, writing nothing (no job either); it exits with status 1 when there are problems.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from imports import services, summary
from imports.mapping import DEFAULT_MAPPINGS, FORMATS, MappingError, load_mapping
from imports.models import JobPhase, JobStatus
from imports.sources import SourceError

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
        parser.add_argument(
            "--check",
            action="store_true",
            help="Only check: read the whole file, list every problem by kind, write nothing "
            "(exit status 1 when there are problems).",
        )
        parser.add_argument("--tz", default="", help="Time zone of the file's dates (overrides the mapping).")
        parser.add_argument("--date-format", default="", help="strptime format of the dates (CSV).")
        parser.add_argument(
            "--batch-rows", type=int, default=services.BATCH_ROWS, help="Rows per transaction (about)."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(
        self, *args, path, format, mapping, strict, check, tz, date_format, batch_rows, no_progress, **options
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
        if check:
            self._check(source, format, mapping_text, mapping_path, tz, date_format, batch_rows, no_progress)
            return
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
        self._adjustments(job.adjustments, done=True)
        if job.problems and job.status == JobStatus.SUCCEEDED:
            self._problems(job.problems, heading="Problems, by kind:")
        if job.rejections:
            shown = job.rejections[:20]
            out.write(
                self.style.WARNING(f"Rejected (first {len(shown)} of {job.cases_rejected + _keyless(job)}):")
            )
            for item in shown:
                # Each problem names its line or trace already.
                out.write(f"  {item['key'] or '(no key)'}: " + "; ".join(item["problems"]))
        if job.status == JobStatus.SUCCEEDED:
            if job.error:  # the import is done; the dashboard's refresh is left to the schedule
                out.write(self.style.WARNING(job.error))
            out.write(self.style.SUCCESS("Done."))

    def _adjustments(self, entries: list[dict], *, done: bool) -> None:
        out = self.stdout
        if not entries:
            out.write("Adjustments to the source's history: none.")
            return
        verb = "made" if done else "the import would make"
        out.write(f"Adjustments {verb} to the source's history (imports/README.md gives each rule):")
        for entry in summary.describe_adjustments(entries):
            what = entry["label"]
            if entry["kind"] == summary.OUTSIDE_LIFECYCLE:
                what += f" {entry['detail']}, written as {entry['written_as']}"
            elif entry["detail"]:
                what += f" ({entry['detail']})"
            examples = ", ".join(entry["examples"])
            out.write(
                f"  {what}: {entry['count']:,} in {entry['cases']:,} case{'s' if entry['cases'] != 1 else ''}"
                + (f", e.g. {examples}" if examples else "")
            )

    def _problems(self, entries: list[dict], *, heading: str) -> None:
        out = self.stdout
        out.write(self.style.WARNING(heading))
        for entry in summary.describe_problems(entries):
            rows = entry["rows"]
            where = ", ".join(entry["examples"])
            out.write(
                f"  {entry['label']}: {rows:,} row{'s' if rows != 1 else ''} in {entry['cases']:,} "
                f"case{'s' if entry['cases'] != 1 else ''}"
                + (f" ({where}{', ...' if rows > len(entry['examples']) else ''})" if where else "")
            )
            if entry["first"]:
                out.write(f"      first: {entry['first']}")

    def _check(self, source, format, mapping_text, mapping_path, tz, date_format, batch_rows, no_progress):
        bar = _Bar(enabled=not no_progress, unit=" events" if format == "xes" else " rows")
        try:
            report = services.check_file(
                format=format,
                mapping_text=mapping_text,
                path=str(source.resolve()),
                now=timezone.now(),
                time_zone=tz,
                date_format=date_format,
                batch_rows=batch_rows,
                progress=bar.update,
            )
        except MappingError as exc:
            raise CommandError(
                f"The mapping {mapping_path.name} cannot be used:\n  " + "\n  ".join(exc.problems)
            ) from exc
        except (SourceError, OSError) as exc:
            raise CommandError(f"{source.name}: {exc}") from exc
        finally:
            bar.close()
        c = report.counters
        out = self.stdout
        out.write(f"Checked {source.name}: {c.rows_read:,} {report.unit} read; nothing was written.")
        out.write(
            f"An import would create {c.cases_created:,} case(s), add updates to {c.cases_updated:,} "
            f"known case(s) and leave {c.cases_unchanged:,} unchanged; it would reject "
            f"{c.cases_rejected:,} case(s) ({c.rows_rejected:,} bad {report.unit})."
        )
        self._adjustments(summary.adjustments_json(c.adjustments), done=False)
        if report.never_seen and format != "xes":
            out.write("Mapped columns that never have a value: " + ", ".join(report.never_seen) + ".")
        if not report.has_problems:
            out.write(self.style.SUCCESS("No problems found."))
            return
        entries = summary.problems_json(c.problems)
        self._problems(entries, heading=f"Problems ({len(entries)} kind(s), {c.problems.total:,} in all):")
        raise CommandError(
            f"{c.problems.total:,} problem(s) of {len(entries)} kind(s) found; fix the file or the mapping "
            "and check again."
        )


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

        if phase == JobPhase.REFRESHING:  # no rows to count: one line says what happens
            if self.phase != phase:
                self.close()
                self.phase = phase
                sys.stderr.write("Updating the dashboard figures for the imported days ...\n")
            return
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
