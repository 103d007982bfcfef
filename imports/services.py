"""Importing a source's history: every write of the imports app.

``create_job`` records what to import; ``run_import`` does it (from the command, or the Celery
task for the page). The file is streamed (``imports.sources``), each source case is derived
(``imports.history``), its SLA clocks replayed (through ``sla.engine``), and cases are written in
batches, one transaction per batch:

* new cases: PostgreSQL ``COPY`` of the case rows (ids reserved from the table's own sequence),
  their events, clocks and import records; ``bulk_create`` on other databases (SQLite);
* known cases (same external reference, imported before): skipped when the source holds nothing
  new; when it holds new updates, those are appended as events and the case's fields and clocks
  recomputed from its whole history;
* bulk writes send no signal: nothing reacts to imported events (no SLA reaction, e-mail, webhook
  or notification), and the replayed clocks settle every deadline that passed before the import.

A bad row rejects its whole source case (a case is never half-imported) and is reported with its
line or trace, and counted by kind. ``strict`` first checks the whole file without writing and
imports only if nothing is wrong; ``check_file`` only checks, writing nothing at all. The
adjustments the derivation made to the history of the cases written are counted on the job
(``imports.summary``). On PostgreSQL each batch takes an advisory lock, so two imports never
interleave their batches; committing uses ``synchronous_commit = off`` (a crash may lose the last
batches; running the import again restores them, since it is idempotent). When the last batch is
committed, the metrics rollup is refreshed for the days the import touched, before the job
reports done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import json
import logging
import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import storages
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from django.utils.text import slugify

from cases import search as case_search
from cases.models import KEY_PREFIX, Case, CaseEvent, Contact, Organisation, Status, Team
from metrics import rollup
from sla import calendars, clock, engine, urgency
from sla.models import SlaClock, SlaPolicy, Target
from supportdesk.core import audit

from . import preparing, sources, summary
from .dates import DateParser
from .history import K_FOLLOW_UP, CasePlan, PlanSummary, Rejection, derive
from .mapping import Mapping, MappingError, load_mapping
from .models import ImportedCase, ImportJob, JobPhase, JobStatus
from .sources import RowError, SourceCase, SourceError, make_source

logger = logging.getLogger(__name__)

#: Problems kept on the job for the page (all are counted).
MAX_REPORTED = 200
#: A batch closes at this many source rows / events (one transaction).
BATCH_ROWS = 20_000
#: Batches the preparing process may run ahead of the writer.
_AHEAD = 2
_ADVISORY_LOCK = 7_211_308_001
_STALE_AFTER = dt.timedelta(minutes=15)


class ImportFailed(Exception):
    """The import could not run (unreadable file or mapping) or a strict import found a problem."""


# ============================================================================ jobs


def create_job(
    *,
    format: str,
    mapping_text: str,
    mapping_name: str,
    now: dt.datetime,
    created_by=None,
    upload: IO[bytes] | None = None,
    upload_name: str = "",
    path: str = "",
    strict: bool = False,
    time_zone: str = "",
    date_format: str = "",
) -> ImportJob:
    """Record an import (the uploaded file goes to the default storage, where workers read it)."""
    load_mapping(mapping_text, format=format).with_overrides(time_zone=time_zone or None)
    job = ImportJob(
        format=format,
        mapping_text=mapping_text,
        mapping_name=mapping_name[:255],
        strict=strict,
        time_zone=time_zone,
        date_format=date_format,
        created_by=created_by,
        created_at=now,
        source_path=path,
        source_name=(upload_name or path.rsplit("/", 1)[-1])[:255],
    )
    if upload is not None:
        from django.core.files import File

        job.source_file.save(_safe_name(upload_name), File(upload), save=False)
    job.save()
    return job


def _safe_name(name: str) -> str:
    """A storage name from an uploaded file's name: no path, no odd characters, the extension kept."""
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem, dot, ext = base.partition(".")
    ext = "".join(ch for ch in ext.lower() if ch.isascii() and (ch.isalnum() or ch == "."))[:20]
    return (slugify(stem)[:80] or "upload") + ("." + ext if ext else "")


def claim_job(job_id: int, *, now: dt.datetime) -> bool:
    """Take a queued job (or one whose worker died) for this process; False if another has it."""
    queued = ImportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED)
    if queued.update(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now):
        return True
    stale = ImportJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, heartbeat_at__lt=now - _STALE_AFTER)
    return bool(stale.update(heartbeat_at=now))


def _opener(job: ImportJob):
    if job.source_file:
        # Through the storage API (a local folder or an object store), never a local path. Each
        # opening gets a storage of its own (the preparing process opens the file too).
        name = job.source_file.name
        return lambda: storages.create_storage(settings.STORAGES["default"]).open(name, "rb")
    path = job.source_path
    return lambda: open(path, "rb")  # noqa: SIM115 - closed by the reader


# ============================================================================ the import


@dataclass
class Counters:
    rows_read: int = 0
    cases_created: int = 0
    cases_updated: int = 0
    cases_unchanged: int = 0
    cases_rejected: int = 0
    rows_rejected: int = 0
    events_created: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)
    # Every adjustment made to the cases written (or, checking, to be written), and every problem.
    adjustments: summary.Tally = field(default_factory=summary.Tally)
    problems: summary.Tally = field(default_factory=summary.Tally)

    def reject(
        self, *, key: str, where: str, problems: list[str], rows: int, issues: list[summary.Issue]
    ) -> None:
        if key:
            self.cases_rejected += 1
        self.rows_rejected += rows
        if len(self.rejections) < MAX_REPORTED:
            self.rejections.append({"key": key, "where": where, "problems": problems[:5]})
        summary.add_rejection_issues(self.problems, issues)

    def adjusted(self, plan: CasePlan | PlanSummary, *, from_update: int = 0) -> None:
        """Count the adjustments of a case written (those its new updates brought, for a known one)."""
        if plan.adjustments:
            summary.add_plan_adjustments(
                self.adjustments, plan.adjustments, key=plan.key, from_update=from_update
            )

    def as_fields(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "cases_created": self.cases_created,
            "cases_updated": self.cases_updated,
            "cases_unchanged": self.cases_unchanged,
            "cases_rejected": self.cases_rejected,
            "rows_rejected": self.rows_rejected,
            "events_created": self.events_created,
            "rejections": self.rejections,
            "adjustments": summary.adjustments_json(self.adjustments),
            "problems": summary.problems_json(self.problems),
        }


Progress = Callable[[str, int, int | None, Counters], None]


def run_import(
    job: ImportJob,
    *,
    now: dt.datetime,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    clock: Callable[[], dt.datetime] = timezone.now,
) -> ImportJob:
    """Import ``job``'s file; the job row says how it went (status, counters, rejections).

    ``now`` is the instant of the import: clock deadlines before it are settled. Bad data is
    reported on the job, not raised; an unexpected error marks the job failed and is re-raised.
    """
    # The organisations and teams an import creates are in the configuration audit trail as the
    # work of whoever started the import.
    with _rare_garbage_collection(), audit.acting_as(job.created_by, reason=f"import job {job.pk}"):
        return _run_import(job, now=now, progress=progress, batch_rows=batch_rows, clock=clock)


@contextlib.contextmanager
def _rare_garbage_collection():
    """An import allocates millions of short-lived objects without reference cycles; with the
    default thresholds Python's cycle collector walks the batches in memory over and over (a third
    of the CPU time). Reference counting frees them anyway, so collect cycles rarely meanwhile."""
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _run_import(job: ImportJob, *, now, progress, batch_rows, clock) -> ImportJob:
    ImportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=job.started_at or clock(), heartbeat_at=clock()
    )
    counters = Counters()
    # The pipeline's preparing process starts now: its start-up overlaps the scan (and a strict
    # import's check) below.
    preparer = None
    try:
        if _pipelined() and _can_start_process():
            preparer = _Preparer()
        mapping = _mapping(job)
        source = make_source(job.format, _opener(job), mapping)
        _phase(job, JobPhase.SCANNING, clock)
        total = source.scan()
        ImportJob.objects.filter(pk=job.pk).update(total=total)
        job.total = total
        if job.strict:
            # The whole file is checked (every problem listed, as ``check_file`` does); only a
            # clean one is imported.
            checked = _Pass(job, mapping, source, now=now, check=True, progress=progress, clock=clock)
            checked.run(batch_rows=batch_rows)
            if checked.counters.rejections:
                found = checked.counters
                counters = Counters(
                    rows_read=found.rows_read,
                    cases_rejected=found.cases_rejected,
                    rows_rejected=found.rows_rejected,
                    rejections=found.rejections,
                    problems=found.problems,
                )
                first = found.rejections[0]
                problem = first["problems"][0] if first["problems"] else first["where"]
                raise ImportFailed(
                    f"Strict import found {found.problems.total:,} problem(s) in "
                    f"{found.cases_rejected + _keyless(found):,} case(s) or row(s), the first: "
                    f"{problem}. Nothing was imported."
                )
            source.read = 0
        importer = _Pass(job, mapping, source, now=now, check=False, progress=progress, clock=clock)
        counters = importer.counters
        importer.run(batch_rows=batch_rows, preparer=preparer)
    except (MappingError, SourceError, ImportFailed, OSError) as exc:
        message = str(exc) if not isinstance(exc, OSError) else f"The file cannot be read: {exc}"
        _finish(job, JobStatus.FAILED, counters, clock, error=message)
        return _refreshed(job)
    except Exception as exc:
        logger.exception("Import %s failed", job.pk)
        _finish(
            job, JobStatus.FAILED, counters, clock, error=f"The import stopped on an internal error: {exc}"
        )
        raise
    finally:
        if preparer is not None:
            preparer.close()
    # The batches are committed: the dashboard's rollup takes the days they touched before the
    # job reports done (a phase of its own on the page), so the figures are fast at once.
    error = _refresh_rollup(job, importer, now=now, progress=progress, clock=clock)
    _finish(job, JobStatus.SUCCEEDED, counters, clock, error=error)
    return _refreshed(job)


def _keyless(counters: Counters) -> int:
    return sum(1 for item in counters.rejections if not item["key"])


def _refresh_rollup(job: ImportJob, importer: _Pass, *, now, progress, clock) -> str:
    """Recompute the metrics rollup for the UTC days the import's cases span (each batch marked
    them dirty when it committed). A failure here loses nothing: the days stay marked for the
    periodic refresh; the job says so."""
    first = importer.first_touched
    if first is None:
        return ""
    _phase(job, JobPhase.REFRESHING, clock)
    if progress:
        progress(JobPhase.REFRESHING, importer.counters.rows_read, job.total, importer.counters)
    first_day, last_day = first.astimezone(dt.UTC).date(), max(first, now).astimezone(dt.UTC).date()
    days = [first_day + dt.timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    try:
        rollup.refresh_days(days, now=now)
    except Exception:
        logger.exception("Import %s: the metrics rollup could not be refreshed", job.pk)
        return (
            "The history was imported, but the dashboard figures could not be refreshed at once; "
            "the periodic refresh will include the imported days."
        )
    return ""


@dataclass
class CheckReport:
    """What ``check_file`` found: the counters of a check (cases that would be created or get new
    updates, problems by kind, the adjustments the import would make) and the mapped fields that
    never have a value in the file."""

    counters: Counters
    total: int
    unit: str
    never_seen: list[str]

    @property
    def has_problems(self) -> bool:
        return bool(self.counters.problems)


def check_file(
    *,
    format: str,
    mapping_text: str,
    path: str,
    now: dt.datetime,
    time_zone: str = "",
    date_format: str = "",
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> CheckReport:
    """Read the whole file as an import would, writing nothing (not even a job), and report every
    problem by kind and the adjustments the import would make. Raises ``MappingError`` or
    ``SourceError`` when the mapping or the file as a whole cannot be used."""
    job = ImportJob(  # never saved: it only carries the options
        format=format,
        mapping_text=mapping_text,
        source_path=path,
        source_name=path.rsplit("/", 1)[-1],
        time_zone=time_zone,
        date_format=date_format,
        created_at=now,
    )
    mapping = _mapping(job)
    source = make_source(format, _opener(job), mapping)
    total = source.scan()
    checker = _Pass(job, mapping, source, now=now, check=True, progress=progress, clock=timezone.now)
    checker.fields_seen = set()
    checker.run(batch_rows=batch_rows)
    never_seen = [name for name in _required_fields(mapping) if name not in checker.fields_seen]
    if format == "xes":
        # An attribute no event or trace has is a misnamed one (a CSV says so by its header).
        for name in never_seen:
            message = f"The mapping names “{name}”, which no event or trace of the file has."
            checker.counters.problems.add(("unknown_field", f"“{name}”"), count=1, example="", first=message)
    return CheckReport(checker.counters, total, source.unit, never_seen)


def _required_fields(mapping: Mapping) -> list[str]:
    """The fields a file should give (template-only fields may be absent: they render empty)."""
    names = [mapping.state, mapping.timestamp]
    optional = [mapping.sequence, mapping.actor, mapping.creator, mapping.created, mapping.resolved]
    names += [n for n in optional if n]
    for value_map in (
        mapping.severity,
        mapping.organisation,
        mapping.requester,
        mapping.team,
        mapping.assignee,
    ):
        names += value_map.fields()
    for rule in (mapping.first_response, mapping.triage, mapping.replies):
        if rule is not None:
            names += list(rule.require)
    return list(dict.fromkeys(names))


def _mapping(job: ImportJob) -> Mapping:
    return load_mapping(job.mapping_text, format=job.format).with_overrides(
        time_zone=job.time_zone or None, date_format=job.date_format or None
    )


def _pipelined() -> bool:
    """Whether an import here writes through the pipeline (PostgreSQL, outside a caller's transaction)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _refreshed(job: ImportJob) -> ImportJob:
    job.refresh_from_db()
    return job


def _phase(job: ImportJob, phase: str, clock) -> None:
    job.phase = phase
    if job.pk is not None:  # (check_file's job is never saved)
        ImportJob.objects.filter(pk=job.pk).update(phase=phase, heartbeat_at=clock())


def _finish(job: ImportJob, status: str, counters: Counters, clock, *, error: str = "") -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=status, phase=JobPhase.DONE, finished_at=clock(), heartbeat_at=clock(), error=error,
        **counters.as_fields(),
    )  # fmt: skip


@dataclass
class CaseRefs:
    """The ids a new or updated case row points to."""

    organisation_id: int | None
    requester_id: int | None
    team_id: int | None
    assignee_id: int | None


@dataclass
class Prepared:
    """One derived case ready to write: its references, replayed clocks and (PostgreSQL) COPY lines."""

    plan: CasePlan | PlanSummary
    refs: CaseRefs
    clocks: list[engine.Clock]
    actor_ids: list[int | None]
    ready: bool = True  # False: nothing prepared (a known case the reader expected to skip)
    known: bool = False  # the case existed when prepared (so it may be appended to)
    case_id: int | None = None
    follow_up_of_id: int | None = None  # the closed case a follow-up is linked to
    follows: str | None = None  # that case's external reference
    case_line: str = ""
    event_text: str = ""  # the events' COPY lines, joined
    event_count: int = 0
    clock_text: str = ""
    record_line: str = ""

    def portable(self) -> Prepared:
        """Keep only what the writing process needs: a new case's COPY lines travel without the
        plan's timeline, clocks and references (a fraction of the pickling work)."""
        if not (self.ready and self.known) and isinstance(self.plan, CasePlan):
            # (a known case that may be appended to keeps everything)
            self.plan, self.refs, self.clocks, self.actor_ids = self.plan.summary(), _NO_REFS, [], []
        return self

    def __reduce__(self):
        # Pickled as a tuple of its fields, in their order: no field names for every item.
        return Prepared, tuple(getattr(self, f.name) for f in _PREPARED_FIELDS)


_NO_REFS = CaseRefs(None, None, None, None)
#: The steps of a plan that move SLA clocks.
_CLOCK_STEPS = frozenset({"status", "created", "severity", "reply", "first_response", "triage"})
#: 24x7 clocks count real time (a tabulated 24x7 calendar answers without a table).
_ROUND_THE_CLOCK = clock.TabulatedCalendar(lambda since, until: calendars.TWENTY_FOUR_SEVEN)
_PREPARED_FIELDS = dataclasses.fields(Prepared)


@dataclass
class Batch:
    items: list[Prepared]
    rejections: list[Rejection | RowError]
    rows_read: int


class _Pass:
    """One pass over the file: checking (strict, nothing written) or importing.

    Importing on PostgreSQL outside a caller's transaction runs as a pipeline: another process
    (``_Preparer``) reads, derives and prepares batch n+1 (with its own connection) while this
    process writes batch n, so the database's work (indexes, constraint checks) overlaps with the
    Python work, which does not share one interpreter lock with the writer. Where no process can be
    started (in a daemonic process), a thread does the same.
    """

    def __init__(self, job, mapping: Mapping, source, *, now, check: bool, progress, clock) -> None:
        self.job = job
        self.mapping = mapping
        self.source = source
        self.now = now
        self.check = check
        self.progress = progress
        self.clock = clock
        self.counters = Counters()
        self.dates = DateParser(fmt=mapping.date_format, time_zone=mapping.time_zone)
        self.refs = References(mapping, create=not check)
        self.copy = not check and connection.vendor == "postgresql"
        self.phase = JobPhase.CHECKING if check else JobPhase.IMPORTING
        self.now_text = now.isoformat()
        self.helper: ThreadPoolExecutor | None = None  # set in the preparing process
        self.first_touched: dt.datetime | None = None  # the earliest instant of a case written
        self.fields_seen: set[str] | None = None  # the mapped fields with a value (check_file)

    def run(self, *, batch_rows: int, preparer: _Preparer | None = None) -> None:
        _phase(self.job, self.phase, self.clock)
        batches = self._batches(batch_rows)
        if self.copy and _pipelined():
            batches = preparer.batches(self, batch_rows) if preparer is not None else _in_thread(batches)
        try:
            for batch in batches:
                self._consume(batch)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        self._report()

    # --- producer: read, derive, resolve, replay, format --------------------------------------

    def _batches(self, batch_rows: int):
        chunk: list[SourceCase | RowError] = []
        rows = 0
        # The first batch is smaller: the writer waits for it, so it should come soon.
        limit = max(1, batch_rows // 4)
        seen = self.fields_seen
        for item in self.source.cases(on_sorting=self._sorting):
            chunk.append(item)
            if isinstance(item, RowError):
                rows += 1
                continue
            rows += len(item.updates)
            if seen is not None:
                for update in item.updates:
                    seen.update(update.values)
            if rows >= limit:
                yield self._prepare(chunk)
                chunk, rows, limit = [], 0, batch_rows
        if chunk:
            yield self._prepare(chunk)

    def _prepare(self, items: list[SourceCase | RowError]) -> Batch:
        rejections: list[Rejection | RowError] = []
        plans: list[CasePlan] = []
        seen: set[str] = set()  # a key seen in an earlier batch is a known case by then
        for item in items:
            if isinstance(item, RowError):
                rejections.append(item)
                continue
            if item.key in seen:
                message = f"{item.where}: {item.key} appears again in the file"
                issue = summary.Issue("repeated_key", "", item.where, message)
                rejections.append(Rejection(item.key, item.where, [message], [issue]))
                continue
            seen.add(item.key)
            result = derive(item, mapping=self.mapping, dates=self.dates, resolver=self.refs, now=self.now)
            if isinstance(result, Rejection):
                rejections.append(result)
                continue
            missing = next(
                (
                    p.organisation
                    for p in result
                    if self.refs.organisation(p.organisation, create=not self.check) is None
                ),
                None,
            )
            if missing is not None:
                message = (
                    f"{item.where}: organisation “{missing}” does not exist "
                    "(create it, or set create_missing = true under [organisation])"
                )
                issue = summary.Issue("unknown_organisation", f"“{missing}”", item.where, message)
                rejections.append(Rejection(item.key, item.where, [message], [issue]))
                continue
            plans += result
        prepared = []
        if not self.check:
            refs = self.refs
            # Known cases with nothing new (a re-import) need no clocks or rows: look them up first.
            # The writer classifies again under its lock; this only saves work.
            settled, known = self._settled(plans)
            work = [plan for plan in plans if plan.external_ref not in settled]
            prepared = [
                Prepared(plan, _NO_REFS, [], [], ready=False)
                for plan in plans
                if plan.external_ref in settled
            ]
            # Finding and creating the requesters is the database's work: in the preparing process
            # it runs in a helper thread (its own connection) while the clocks are replayed here.
            helper = self.helper
            pending = helper.submit(refs.prefetch_contacts, work) if helper is not None else None
            if pending is None:
                refs.prefetch_contacts(work)
            replayed = [self._clocks(plan, refs.organisation(plan.organisation)) for plan in work]
            if pending is not None:
                pending.result()
            new = []
            for plan, clocks in zip(work, replayed, strict=True):
                org = refs.organisation(plan.organisation)
                case_refs = CaseRefs(
                    organisation_id=org.id,
                    requester_id=refs.contact_id(plan),
                    team_id=refs.team_id(plan.team_value),
                    assignee_id=refs.user_id(plan.assignee_username),
                )
                actor_ids = [refs.actor_id(e.actor_source) for e in plan.events]
                new.append(Prepared(plan, case_refs, clocks, actor_ids, known=plan.external_ref in known))
            if self.copy and new:
                ids = _reserve_case_ids(len(new))
                # A follow-up of a case that exists points at that case; of one new here, at the id
                # reserved for it.
                reserved = {i.plan.external_ref: c for i, c in zip(new, ids, strict=True)}
                _link_follow_ups(new, {**reserved, **known})
                for item, case_id in zip(new, ids, strict=True):
                    _format(item, case_id, job_id=self.job.pk, format=self.job.format, now_text=self.now_text)
            prepared += new
        else:
            prepared = [Prepared(plan, _NO_REFS, [], [], ready=False) for plan in plans]
        return Batch(prepared, rejections, self.source.read)

    def _settled(self, plans: list[CasePlan]) -> tuple[set[str], dict[str, int]]:
        """External references of ``plans`` already imported with all their updates, or whose
        imported history differs (rejected by the writer): nothing to prepare for them; and
        the ids of every case that exists, by external reference."""
        existing = _existing_cases([plan.external_ref for plan in plans])
        if not existing:
            return set(), {}
        records = {
            r.case_id: r for r in ImportedCase.objects.filter(case_id__in=[c.pk for c in existing.values()])
        }
        settled = set()
        for plan in plans:
            case = existing.get(plan.external_ref)
            if case is None:
                continue
            record = records.get(case.pk)
            if (
                record is None
                or plan.update_count == record.updates
                or plan.digest_of_first(record.updates) != record.digest
            ):
                settled.add(plan.external_ref)
        return settled, {ref: case.pk for ref, case in existing.items()}

    def _clocks(self, plan: CasePlan, org: OrganisationRef) -> list[engine.Clock]:
        """The case's clocks after its whole history, replayed through the SLA engine: the rows a
        live case with the same history would end with, every deadline before the import settled
        at the instant it passed (no signal, no timeline event, no notification)."""
        refs = self.refs
        clocks = engine.CaseClocks(counting=refs.counting(org), measured=refs.measured)
        for step in plan.steps:
            kind, at = step.kind, step.at
            if kind not in _CLOCK_STEPS:
                continue
            clocks.advance(at, exact=True)
            if kind == "status":
                clocks.status_changed(at, old=step.old, new=step.new)
            elif kind == "created":
                clocks.created(at, terms=refs.terms(org.tier, step.severity))
            elif kind == "severity":
                clocks.severity_changed(at, terms=refs.terms(org.tier, step.severity))
            elif kind == "reply":
                clocks.staff_reply(at)
            elif kind == "first_response":
                clocks.first_response(at)
            else:
                clocks.triaged(at)
        clocks.advance(self.now, exact=True)
        return clocks.all()

    def _sorting(self, done: int) -> None:
        if self.progress:
            self.progress(JobPhase.SORTING, done, self.source.total, self.counters)

    # --- consumer: classify and write, one transaction per batch ------------------------------

    def _consume(self, batch: Batch) -> None:
        for rejection in batch.rejections:
            self._reject(rejection)
        self.counters.rows_read = batch.rows_read
        if self.check:
            new, appended, _ids = self._classify(batch.items)
            self._count_written(new, appended)
        else:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK])
                        cursor.execute("SET LOCAL synchronous_commit TO off")
                new, appended, existing_ids = self._classify(batch.items)
                new, appended = self._ready(new, appended)
                new = self._linked(new, existing_ids)
                if self.copy:
                    events = _write_copy(new)
                else:
                    events = _write_orm(new, job=self.job, now=self.now, existing_ids=existing_ids)
                for item, case, _record in appended:
                    events += _append(item, case, _record, job=self.job, now=self.now)
                # The open cases' place in the queue, from the clocks just written (a new closed
                # case keeps its empty columns: no second write of it).
                urgency.refresh([i.case_id for i in new], open_only=True)
                urgency.refresh([case.pk for _, case, _ in appended])
                # What case search finds them by, from the rows just written (one statement set).
                case_search.reindex([i.case_id for i in new] + [case.pk for _, case, _ in appended])
                # Historical rows land on days the metrics rollup may hold: mark them dirty in the
                # same transaction (every instant of a case is between its creation and now).
                firsts = [i.plan.created_at for i in new] + [case.created_at for _, case, _ in appended]
                if firsts:
                    first = min(firsts)
                    rollup.touch_span(first, self.clock())
                    if self.first_touched is None or first < self.first_touched:
                        self.first_touched = first
            self._count_written(new, appended)
            self.counters.events_created += events
        self._report()

    def _count_written(self, new: list[Prepared], appended: list) -> None:
        counters = self.counters
        counters.cases_created += len(new)
        counters.cases_updated += len(appended)
        for item in new:
            counters.adjusted(item.plan)
        for item, _case, record in appended:
            counters.adjusted(item.plan, from_update=record.updates)

    def _linked(self, new: list[Prepared], existing_ids: dict[str, int]) -> list[Prepared]:
        """A follow-up is written only with the case it follows: one written in this batch before it,
        or one there before (with the id its COPY line names); else it is reported."""
        present: dict[str, int | None] = dict(existing_ids)
        kept = []
        for item in new:
            ref = item.follows
            if ref is not None and (
                ref not in present or (self.copy and present[ref] != item.follow_up_of_id)
            ):
                plan = item.plan
                message = (
                    f"{plan.where}: {plan.key} follows {ref}, which changed during the import; import again"
                )
                issue = summary.Issue("known_case", "changed during the import", plan.where, message)
                self._reject(Rejection(plan.key, plan.where, [message], [issue]))
                continue
            kept.append(item)
            present[item.plan.external_ref] = item.case_id
        return kept

    def _ready(self, new: list[Prepared], appended: list):
        """Only what was prepared is written; a case another import changed meanwhile is reported."""

        def unready(item: Prepared) -> bool:  # a summary cannot be appended: it has no timeline
            return not item.ready or not isinstance(item.plan, CasePlan)

        for item in [i for i in new if not i.ready] + [a[0] for a in appended if unready(a[0])]:
            plan = item.plan
            message = f"{plan.where}: {plan.key} changed during the import; import again"
            issue = summary.Issue("known_case", "changed during the import", plan.where, message)
            self._reject(Rejection(plan.key, plan.where, [message], [issue]))
        return [i for i in new if i.ready], [a for a in appended if not unready(a[0])]

    def _report(self) -> None:
        c = self.counters
        if self.job.pk is None:  # check_file: nothing is written, not even a job
            pass
        elif not self.check:
            ImportJob.objects.filter(pk=self.job.pk).update(heartbeat_at=self.clock(), **c.as_fields())
        else:
            ImportJob.objects.filter(pk=self.job.pk).update(heartbeat_at=self.clock(), rows_read=c.rows_read)
        if self.progress:
            self.progress(self.phase, c.rows_read, self.source.total, c)

    def _reject(self, rejection: Rejection | RowError) -> None:
        if isinstance(rejection, RowError):
            message = f"{rejection.where}: {rejection.message}"
            issue = summary.Issue("no_key", self.mapping.key, rejection.where, message)
            self.counters.reject(key="", where=rejection.where, problems=[message], rows=1, issues=[issue])
        else:
            issues = rejection.issues or [
                summary.Issue("other", p.partition(": ")[2] or p, rejection.where, p)
                for p in rejection.problems
            ]
            self.counters.reject(
                key=rejection.key,
                where=rejection.where,
                problems=rejection.problems,
                rows=max(1, rejection.rows),
                issues=issues,
            )

    def _classify(self, items: list[Prepared]):
        """Split into new cases and known cases with new updates; count and reject the rest. Also
        returns the ids of the cases that exist, by external reference."""
        existing = _existing_cases([item.plan.external_ref for item in items])
        case_ids = [c.pk for c in existing.values()]
        records = {r.case_id: r for r in ImportedCase.objects.filter(case_id__in=case_ids)}
        touched = set()
        if case_ids:
            touched = set(
                CaseEvent.objects.filter(case_id__in=case_ids, imported=False)
                .values_list("case_id", flat=True)
                .distinct()
            )
        new: list[Prepared] = []
        appended: list[tuple[Prepared, Case, ImportedCase]] = []
        for item in items:
            plan = item.plan
            case = existing.get(plan.external_ref)
            if case is None:
                new.append(item)
                continue
            record = records.get(case.pk)
            where = f"{plan.where}: {plan.key}"
            if record is None:
                kind = "already a case that was not imported"
                problem = f"{where} is already {case.key}, which was not imported"
            elif plan.digest_of_first(record.updates) != record.digest:
                kind = "history differs from the one imported"
                problem = (
                    f"{where}: its history differs from the {record.updates} update(s) imported as {case.key}"
                )
            elif plan.update_count == record.updates:
                self.counters.cases_unchanged += 1
                continue
            elif case.version != record.case_version or case.pk in touched:
                kind = "changed in SupportDesk since it was imported"
                problem = (
                    f"{where}: {case.key} has changed in SupportDesk since it was imported; "
                    "its later updates in the source are not imported"
                )
            elif case.status == Status.CLOSED and any(
                index < record.updates for index in getattr(plan, "withdrawn_closes", ())
            ):
                kind = "closed when imported, moved on by the source since"
                problem = (
                    f"{where}: {case.key} was closed when it was imported and the source has moved it on "
                    'since; SupportDesk reopens no closed case (with after_close = "new_case" under '
                    "[lifecycle] its later updates become a linked follow-up case)"
                )
            else:
                appended.append((item, case, record))
                continue
            issue = summary.Issue("known_case", kind, plan.where, problem)
            self._reject(Rejection(plan.key, plan.where, [problem], [issue]))
        return new, appended, {ref: case.pk for ref, case in existing.items()}


def _existing_cases(refs: list[str]) -> dict[str, Case]:
    """The cases that already have these external references (one indexed query)."""
    if not refs:
        return {}
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands: the ORM's IN (...) costs more to build than to run.
        rows = Case.objects.raw(
            f"SELECT id, external_ref, version, status, created_at FROM {Case._meta.db_table} "  # noqa: S608
            "WHERE external_ref = ANY(%s)",
            [refs],
        )
        return {c.external_ref: c for c in rows}
    found: dict[str, Case] = {}
    for start in range(0, len(refs), 500):  # SQLite limits the number of parameters
        chunk = refs[start : start + 500]
        cases = Case.objects.filter(external_ref__in=chunk)
        for c in cases.only("id", "external_ref", "version", "status", "created_at"):
            found[c.external_ref] = c
    return found


def _can_start_process() -> bool:
    # A daemonic process (a multiprocessing pool's worker) may not start processes of its own.
    return not multiprocessing.current_process().daemon


@dataclass(frozen=True)
class _PassSpec:
    """What the preparing process needs to prepare an import pass, as plain data: it reads the job
    row (mapping, file, overrides, who started it) itself."""

    job_id: int
    now: dt.datetime
    batch_rows: int
    total: int | None  # what the importing process's scan found
    is_sorted: bool | None
    sort_run_rows: int


class _Preparer:
    """The process that prepares an import's batches, ahead of the importing process (the writer).

    It is started with ``spawn`` as soon as the import begins, so that its start-up (a fresh
    interpreter setting Django up, ``imports.preparing``) overlaps the scan of the file. It shares
    nothing with the writer: no inherited sockets or threads, so any other connection this process
    holds (a web server's or a live server's thread) is never touched. When the pass begins it
    receives the pass as a ``_PassSpec``, opens the file and its own database connection, and sends
    each batch back pickled, new cases as their COPY lines. It runs up to ``_AHEAD`` batches ahead,
    so that neither side waits for the other when one batch takes longer than the next; memory
    stays bounded by those batches. Rejections travel inside the batches; sorting progress and the
    child's failure come as messages of their own.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.channel, child_end = context.Pipe(duplex=True)
        self.process = context.Process(
            target=preparing.main, args=(_environment(), child_end), name="import-prepare", daemon=True
        )
        self.process.start()
        child_end.close()
        self.finished = False  # the child sent its last message (it ends by itself)

    def batches(self, importer: _Pass, batch_rows: int):
        source = importer.source
        spec = _PassSpec(
            job_id=importer.job.pk,
            now=importer.now,
            batch_rows=batch_rows,
            total=source.total,
            is_sorted=source.is_sorted,
            sort_run_rows=sources.SORT_RUN_ROWS,
        )
        self.channel.send(spec)
        while True:
            try:
                kind, payload = pickle.loads(self.channel.recv_bytes())  # noqa: S301 - from our own child
            except EOFError:
                self.process.join(5)
                raise RuntimeError(
                    f"The process preparing the import ended unexpectedly (exit code {self.process.exitcode})"
                ) from None
            if kind == "batch":
                yield payload
            elif kind == "sorting":
                importer._sorting(payload)
            elif kind == "error":
                self.finished = True
                raise payload
            else:
                self.finished = True
                return

    def close(self) -> None:
        self.channel.close()  # a child still waiting for its pass sees the end and stops
        if self.finished:  # it closes its connection and ends
            self.process.join(60)
        if self.process.is_alive():  # never used, or stopped early (the writer failed): it may be busy
            self.process.terminate()
            self.process.join()


def _environment() -> preparing.Environment:
    """This process's settings, for the preparing process (they must all be picklable)."""
    return preparing.Environment(
        settings={name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    )


def serve_batches(channel) -> None:
    """The preparing process's side of ``_Preparer`` (called by ``imports.preparing`` once Django is
    set up): wait for the pass, then prepare its batches and send them through ``channel``."""
    try:
        spec: _PassSpec = channel.recv()
    except EOFError:  # the import ended before its pass began (a bad file, a failed strict check)
        return
    gc.freeze()  # what start-up loaded is never garbage: keep the cycle collector off it
    sources.SORT_RUN_ROWS = spec.sort_run_rows  # sort the file in the runs the importing process uses

    def start() -> _Pass:
        job = ImportJob.objects.select_related("created_by").get(pk=spec.job_id)
        mapping = _mapping(job)
        source = make_source(job.format, _opener(job), mapping)
        source.total, source.is_sorted = spec.total, spec.is_sorted
        return _Pass(job, mapping, source, now=spec.now, check=False, progress=None, clock=timezone.now)

    with _rare_garbage_collection():
        _prepare_in_child(start, spec.batch_rows, channel)


def _prepare_in_child(start: Callable[[], _Pass], batch_rows: int, sending) -> None:
    """Prepare the batches of the pass ``start`` builds and send them: they are pickled here and
    written to the pipe by a thread (which waits for the parent without holding the interpreter
    lock)."""
    outbox: queue.Queue = queue.Queue(maxsize=_AHEAD)
    broken = threading.Event()

    def write() -> None:
        try:
            while (data := outbox.get()) is not None:
                sending.send_bytes(data)
        except OSError:  # the parent stopped reading (it failed or was stopped)
            broken.set()

    def post(kind: str, payload: Any) -> None:
        data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        while not broken.is_set():
            try:
                outbox.put(data, timeout=0.5)
                return
            except queue.Full:
                continue
        raise BrokenPipeError("the importing process stopped reading")

    writer = threading.Thread(target=write, name="import-send", daemon=True)
    writer.start()
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-contacts")
    try:
        importer = start()
        # The organisations, teams and contacts created here are the work of whoever started it.
        with audit.acting_as(importer.job.created_by, reason=f"import job {importer.job.pk}"):
            importer.helper = helper
            importer._sorting = lambda done: post("sorting", done)  # to the parent's progress
            for batch in importer._batches(batch_rows):
                batch.items = [item.portable() for item in batch.items]
                post("batch", batch)
        post("end", None)
    except BaseException as exc:
        if not broken.is_set():
            exc.add_note(f"(raised while preparing the import, in process {os.getpid()})")
            try:
                pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
            except Exception:  # it does not survive the trip: its text will do
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            post("error", exc)
    finally:
        helper.submit(connections.close_all).result()  # the helper thread's connection
        helper.shutdown()
        connections.close_all()
        if not broken.is_set():
            outbox.put(None)
            writer.join()
        sending.close()


def _in_thread(batches):
    """Run the generator ``batches`` in a thread, one batch ahead of the caller."""
    results: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        results.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            results.put(end)
        except BaseException as exc:  # handed to the consumer, which raises it
            results.put(exc)
        finally:
            connections.close_all()  # this thread's own connection

    worker = threading.Thread(target=produce, name="import-prepare", daemon=True)
    worker.start()
    try:
        while True:
            item = results.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.1)
        worker.join()


# ============================================================================ references


@dataclass(frozen=True)
class OrganisationRef:
    id: int | None
    name: str
    tier: str
    calendar_id: int | None


class References:
    """Names in the source -> organisations, teams, people and contacts; cached for the whole import.

    Memory grows with the number of distinct names (organisations, teams, people, requesters), not
    with the number of rows. Reads only, unless ``create`` (then missing organisations, teams and
    contacts are created when the mapping says so).
    """

    def __init__(self, mapping: Mapping, *, create: bool) -> None:
        self.mapping = mapping
        self.create = create
        self._orgs: dict[str, OrganisationRef | None] = {}
        self._teams: dict[str, tuple[int | None, str] | None] = {}
        self._users: dict[str, int | None] = {}
        self._actors: dict[str, int | None] = {}  # source name -> user id
        self._contacts: dict[tuple[int, str], int] = {}
        self._terms: dict[tuple[str, str], engine.Terms | None] = {}
        self._business: dict[int | None, clock.TabulatedCalendar] = {}
        self._policies_loaded = False
        measured = {Target.RESOLUTION.value}
        if mapping.first_response is not None or mapping.replies is not None:
            measured.add(Target.FIRST_RESPONSE.value)
        if mapping.measures_triage:
            measured.add(Target.TRIAGE.value)
        if mapping.replies is not None:
            measured.add(Target.UPDATE_CADENCE.value)
        self.measured = frozenset(measured)
        self._default_calendar = calendars.default_calendar()

    # --- organisations -----------------------------------------------------------------------

    def organisation(self, name: str, *, create: bool = False) -> OrganisationRef | None:
        ref = self._orgs.get(name)
        if ref is not None and (ref.id is not None or not (create and self.create)):
            return ref
        org = Organisation.objects.filter(name=name).first()
        if org is None and self.mapping.organisation.create_missing:
            if create and self.create:
                org, _ = Organisation.objects.get_or_create(
                    name=name[:200],
                    defaults={
                        "tier": self.mapping.organisation_tier,
                        "time_zone": self.mapping.organisation_time_zone,
                    },
                )
            else:
                ref = OrganisationRef(None, name, self.mapping.organisation_tier, self._calendar_id(None))
                self._orgs[name] = ref
                return ref
        if org is None:
            self._orgs[name] = None
            return None
        ref = OrganisationRef(org.pk, org.name, org.tier, self._calendar_id(org.pk))
        self._orgs[name] = ref
        return ref

    def _calendar_id(self, organisation_id: int | None) -> int | None:
        calendar = (
            calendars.calendar_for_organisation(organisation_id)
            if organisation_id is not None
            else self._default_calendar
        )
        return calendar.pk if calendar is not None else None

    # --- SLA ---------------------------------------------------------------------------------

    def terms(self, tier: str, severity: str) -> engine.Terms | None:
        if not self._policies_loaded:
            for policy in SlaPolicy.objects.all():
                self._terms[(policy.tier, policy.severity)] = engine.Terms(
                    policy_id=policy.pk,
                    business_time=policy.business_time,
                    warning_ratio=policy.warning_ratio,
                    minutes={t: policy.minutes_for(t) for t in Target.values},
                )
            self._policies_loaded = True
        return self._terms.get((tier, severity))

    def counting(self, org: OrganisationRef) -> engine.Counting:
        """The engine's arithmetic for the organisation's clocks: its calendar tabulated, or 24x7."""
        business = self.business_time(org)

        def counting(business_time: bool, since: dt.datetime, until: dt.datetime) -> clock.TabulatedCalendar:
            return business if business_time else _ROUND_THE_CLOCK

        return counting

    def business_time(self, org: OrganisationRef) -> clock.TabulatedCalendar:
        calendar_id = org.calendar_id
        if calendar_id not in self._business:
            from sla.models import BusinessCalendar

            calendar = BusinessCalendar.objects.filter(pk=calendar_id).first() if calendar_id else None

            def calendar_for(since, until, calendar=calendar):
                return calendars.clock_calendar(calendar, business_time=True, since=since, until=until)

            self._business[calendar_id] = clock.TabulatedCalendar(calendar_for)
        return self._business[calendar_id]

    # --- teams and people (used while deriving: read only) -----------------------------------

    def _team(self, value: str) -> tuple[int | None, str] | None:
        if value in self._teams:
            return self._teams[value]
        team_map = self.mapping.team
        slug = team_map.values.get(value) or slugify(value)[:100]
        team = Team.objects.filter(slug=slug).first() or Team.objects.filter(name__iexact=value).first()
        if team is not None:
            found: tuple[int | None, str] | None = (team.pk, team.slug)
        elif team_map.create_missing and slug:
            found = (None, slug)
        else:
            found = None
        self._teams[value] = found
        return found

    def team_slug(self, value: str) -> str | None:
        found = self._team(value)
        return found[1] if found else None

    def team_id(self, value: str | None) -> int | None:
        if value is None:
            return None
        found = self._team(value)
        if found is None:
            return None
        team_id, slug = found
        if team_id is None and self.create:
            name = value[:100]
            try:
                with transaction.atomic():
                    team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": name})
            except IntegrityError:  # the name is taken by a team with another slug
                team = Team.objects.get(name=name)
            team_id = team.pk
            self._teams[value] = (team.pk, team.slug)
        return team_id

    def username(self, value: str) -> str | None:
        username = self.mapping.people.get(value)
        if username is None:
            return None
        return username if self.user_id(username) is not None else None

    def user_id(self, username: str | None) -> int | None:
        if username is None:
            return None
        if username not in self._users:
            user = get_user_model().objects.filter(username=username, is_active=True).only("id").first()
            self._users[username] = user.pk if user else None
        return self._users[username]

    def actor_id(self, source_name: str) -> int | None:
        try:  # asked for every event: one lookup for a name seen before
            return self._actors[source_name]
        except KeyError:
            found = self._actors[source_name] = self.user_id(self.mapping.people.get(source_name))
            return found

    # --- contacts ----------------------------------------------------------------------------

    def prefetch_contacts(self, plans: Iterable[CasePlan]) -> None:
        """Find or create the requesters of ``plans`` with a few queries for the whole batch."""
        wanted: dict[tuple[int, str], str] = {}
        for plan in plans:
            org = self.organisation(plan.organisation)
            key = (org.id, plan.requester_email)
            if key not in self._contacts:
                wanted.setdefault(key, plan.requester_name)
        if not wanted:
            return
        self._load_contacts(wanted)
        missing = [k for k in wanted if k not in self._contacts]
        if missing and connection.vendor == "postgresql":
            self._create_contacts({k: wanted[k] for k in missing})
            missing = [k for k in missing if k not in self._contacts]  # created meanwhile by another import
            if missing:
                self._load_contacts({k: wanted[k] for k in missing})
        elif missing:
            Contact.objects.bulk_create(
                [
                    Contact(organisation_id=org, email=email, name=wanted[(org, email)])
                    for org, email in missing
                ],
                ignore_conflicts=True,
            )
            self._load_contacts({k: wanted[k] for k in missing})

    def _load_contacts(self, wanted: dict[tuple[int, str], str]) -> None:
        if connection.vendor == "postgresql":
            # Exactly the wanted pairs (IN lists of organisations and of addresses would match
            # every contact of every organisation named: more rows as the table grows).
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT c.organisation_id, c.email, c.id FROM {Contact._meta.db_table} c "  # noqa: S608
                    "JOIN unnest(%s::bigint[], %s::text[]) AS w(organisation_id, email) "
                    "ON c.organisation_id = w.organisation_id AND c.email = w.email",
                    [[org for org, _ in wanted], [email for _, email in wanted]],
                )
                for org, email, contact_id in cursor.fetchall():
                    self._contacts[(org, email)] = contact_id
            return
        orgs = {org for org, _ in wanted}
        emails = {email for _, email in wanted}
        rows = Contact.objects.filter(organisation_id__in=orgs, email__in=emails).values_list(
            "organisation_id", "email", "id"
        )
        for org, email, contact_id in rows:
            if (org, email) in wanted:
                self._contacts[(org, email)] = contact_id

    def _create_contacts(self, wanted: dict[tuple[int, str], str]) -> None:
        """PostgreSQL: insert the contacts in one statement; those another import inserted first
        are left out (and looked up by the caller)."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Contact._meta.db_table} (organisation_id, email, name) "  # noqa: S608
                "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[]) "
                "ON CONFLICT (organisation_id, email) DO NOTHING RETURNING organisation_id, email, id",
                [[org for org, _ in wanted], [email for _, email in wanted], list(wanted.values())],
            )
            for org, email, contact_id in cursor.fetchall():
                self._contacts[(org, email)] = contact_id

    def contact_id(self, plan: CasePlan) -> int:
        org = self.organisation(plan.organisation)
        return self._contacts[(org.id, plan.requester_email)]


# ============================================================================ writing
#
# COPY text format: columns separated by tabs, \N for NULL, backslash escapes. The column lists
# below are the order the formatter writes; they are checked against the models when first used.

CASE_COLUMNS = (
    "id", "title", "description", "organisation_id", "requester_id", "severity", "severity_confirmed",
    "status", "assignee_id", "team_id", "product_area", "external_ref", "created_at", "updated_at",
    "first_response_at", "triaged_at", "first_resolved_at", "last_resolved_at", "closed_at",
    "reopen_count", "version", "follow_up_of_id", "next_due_at", "next_due_target", "next_due_state",
)  # fmt: skip
EVENT_COLUMNS = (
    "case_id", "kind", "actor_id", "actor_name", "created_at", "field", "old_value", "new_value", "body",
    "is_public", "imported",
)  # fmt: skip
CLOCK_COLUMNS = (
    "case_id", "target", "run", "state", "policy_id", "target_minutes", "business_time", "warning_ratio",
    "started_at", "due_at", "warn_at", "paused_at", "pauses", "paused_total", "consumed",
    "remaining_at_pause", "warned_at", "met_at", "breached_at", "cancelled_at",
)  # fmt: skip
RECORD_COLUMNS = (
    "case_id", "source_format", "source_key", "updates", "digest", "case_version", "job_id", "imported_at",
)  # fmt: skip
_NULL = "\\N"
_ZERO = dt.timedelta(0)
_CACHE_LIMIT = 20_000
_escaped: dict[str, str] = {}
_json_strings: dict[str, str] = {}


def _esc(value: str) -> str:
    """A text value for COPY (repeated short values are cached)."""
    out = _escaped.get(value)
    if out is None:
        out = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        if len(value) < 200:
            if len(_escaped) >= _CACHE_LIMIT:
                _escaped.clear()
            _escaped[value] = out
    return out


def _json(value: Any) -> str:
    if value is None:
        return _NULL
    if isinstance(value, str):
        out = _json_strings.get(value)
        if out is None:
            out = _esc(json.dumps(value, ensure_ascii=False))
            if len(_json_strings) >= _CACHE_LIMIT:
                _json_strings.clear()
            _json_strings[value] = out
        return out
    return _esc(json.dumps(value, ensure_ascii=False))


_timestamps: dict[dt.datetime, str] = {}


def _ts(value: dt.datetime | None) -> str:
    """An instant for COPY. A case repeats its instants (an update's time is on its events, the
    case row and the clocks), and looking one up costs a fraction of formatting it again."""
    if value is None:
        return _NULL
    out = _timestamps.get(value)
    if out is None:
        if len(_timestamps) >= _CACHE_LIMIT:
            _timestamps.clear()
        out = _timestamps[value] = value.isoformat()
    return out


def _id(value: int | None) -> str:
    return _NULL if value is None else str(value)


def _interval(value: dt.timedelta | None) -> str:
    if value is None:
        return _NULL
    if not value:
        return "0"
    return f"{(value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds} microseconds"


def _reserve_case_ids(size: int) -> list[int]:
    """Case ids from the table's own sequence: never reused, so safe next to live inserts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Case._meta.db_table, size],
        )
        return [r[0] for r in cursor.fetchall()]


def _format(item: Prepared, case_id: int, *, job_id: int, format: str, now_text: str) -> None:
    """Render ``item`` as COPY lines (in the producer thread, while the previous batch is written)."""
    plan, refs = item.plan, item.refs
    cid = str(case_id)
    item.case_id = case_id
    item.case_line = "\t".join(
        (
            cid, _esc(plan.title), _esc(plan.description), _id(refs.organisation_id), _id(refs.requester_id),
            plan.severity, "t" if plan.triaged_at is not None else "f", plan.status, _id(refs.assignee_id),
            _id(refs.team_id), _esc(plan.product_area), _esc(plan.external_ref), _ts(plan.created_at),
            _ts(plan.updated_at), _ts(plan.first_response_at), _ts(plan.triaged_at),
            _ts(plan.first_resolved_at), _ts(plan.last_resolved_at), _ts(plan.closed_at),
            str(plan.reopen_count), str(plan.version), _id(item.follow_up_of_id),
            _NULL, "", "none",  # its urgency: urgency.refresh() after the clocks are written
        )
    )  # fmt: skip
    item.event_text = "\n".join(
        f"{cid}\t{e.kind}\t{_NULL if actor is None else actor}\t{_esc(e.actor_name)}\t{_ts(e.at)}\t"
        f"{e.field}\t{_NULL if e.old is None else _json(e.old)}\t{_NULL if e.new is None else _json(e.new)}\t"
        f"{_esc(e.body) if e.body else ''}\t{'t' if e.is_public else 'f'}\tt"
        for e, actor in zip(plan.events, item.actor_ids, strict=True)
    )
    item.event_count = len(plan.events)
    # Hundreds of thousands of clock rows, most fields empty: None is tested inline.
    item.clock_text = "\n".join(
        f"{cid}\t{c.target}\t{c.run}\t{c.state}\t{_id(c.policy_id)}\t{c.target_minutes}\t"
        f"{'t' if c.business_time else 'f'}\t{c.warning_ratio!r}\t{_ts(c.started_at)}\t{_ts(c.due_at)}\t"
        f"{_ts(c.warn_at)}\t{_NULL if c.paused_at is None else _ts(c.paused_at)}\t"
        f"{_esc(json.dumps(c.pauses)) if c.pauses else '[]'}\t"
        f"{'0' if c.paused_total == _ZERO else _interval(c.paused_total)}\t"
        f"{'0' if c.consumed == _ZERO else _interval(c.consumed)}\t"
        f"{_NULL if c.remaining_at_pause is None else _interval(c.remaining_at_pause)}\t"
        f"{_NULL if c.warned_at is None else _ts(c.warned_at)}\t"
        f"{_NULL if c.met_at is None else _ts(c.met_at)}\t"
        f"{_NULL if c.breached_at is None else _ts(c.breached_at)}\t"
        f"{_NULL if c.cancelled_at is None else _ts(c.cancelled_at)}"
        for c in item.clocks
    )
    item.record_line = (
        f"{cid}\t{format}\t{_esc(plan.key[:100])}\t{plan.update_count}\t{plan.digest}\t{plan.version}\t"
        f"{job_id}\t{now_text}"
    )


_columns_checked = False


def _check_columns() -> None:
    """The COPY column lists name real columns (a renamed field fails loudly, not silently)."""
    global _columns_checked
    if _columns_checked:
        return
    for model, names in (
        (Case, CASE_COLUMNS),
        (CaseEvent, EVENT_COLUMNS),
        (SlaClock, CLOCK_COLUMNS),
        (ImportedCase, RECORD_COLUMNS),
    ):
        columns = {f.column for f in model._meta.concrete_fields}
        unknown = set(names) - columns
        missing = {f.column for f in model._meta.concrete_fields if not f.primary_key or model is Case} - set(
            names
        )
        missing.discard("id")
        if unknown or (missing - {"id"}):
            raise RuntimeError(f"Import COPY columns out of date for {model.__name__}: {unknown or missing}")
    _columns_checked = True


def _copy(model, columns: tuple[str, ...], lines: list[str]) -> None:
    if not lines:
        return
    qn = connection.ops.quote_name
    sql = (
        f"COPY {qn(model._meta.db_table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN WITH (FORMAT text)"
    )
    data = "\n".join(lines) + "\n"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:  # psycopg 3
        copy.write(data)


def _write_copy(new: list[Prepared]) -> int:
    """PostgreSQL: COPY the new cases with their events, clocks and import records."""
    if not new:
        return 0
    _check_columns()
    _copy(Case, CASE_COLUMNS, [item.case_line for item in new])
    events = [item.event_text for item in new if item.event_text]
    _copy(CaseEvent, EVENT_COLUMNS, events)
    _copy(SlaClock, CLOCK_COLUMNS, [item.clock_text for item in new if item.clock_text])
    _copy(ImportedCase, RECORD_COLUMNS, [item.record_line for item in new])
    return sum(item.event_count for item in new)


def _link_follow_ups(items: list[Prepared], ids: dict[str, int]) -> None:
    """Point each follow-up at the closed case it follows (by external reference, among ``ids``),
    and name that case in its ``follow_up_opened`` event, as ``cases.services`` does."""
    for item in items:
        plan = item.plan
        ref = getattr(plan, "follow_up_of_ref", None)
        if ref is None:
            continue
        item.follows = ref
        item.follow_up_of_id = ids.get(ref)
        if item.follow_up_of_id is not None:
            for event in plan.events:
                if event.kind == K_FOLLOW_UP:
                    event.new = f"{KEY_PREFIX}{item.follow_up_of_id}"


def _case_fields(item: Prepared) -> dict[str, Any]:
    plan, refs = item.plan, item.refs
    return {
        "title": plan.title,
        "description": plan.description,
        "organisation_id": refs.organisation_id,
        "requester_id": refs.requester_id,
        "severity": plan.severity,
        "severity_confirmed": plan.triaged_at is not None,
        "status": plan.status,
        "assignee_id": refs.assignee_id,
        "team_id": refs.team_id,
        "product_area": plan.product_area,
        "external_ref": plan.external_ref,
        "created_at": plan.created_at,
        "updated_at": plan.updated_at,
        "first_response_at": plan.first_response_at,
        "triaged_at": plan.triaged_at,
        "first_resolved_at": plan.first_resolved_at,
        "last_resolved_at": plan.last_resolved_at,
        "closed_at": plan.closed_at,
        "reopen_count": plan.reopen_count,
        "version": plan.version,
    }


def _events(item: Prepared, case_id: int, *, from_update: int = 0) -> list[CaseEvent]:
    return [
        CaseEvent(
            case_id=case_id,
            kind=e.kind,
            actor_id=actor,
            actor_name=e.actor_name,
            created_at=e.at,
            field=e.field,
            old_value=e.old,
            new_value=e.new,
            body=e.body,
            is_public=e.is_public,
            imported=True,
        )
        for e, actor in zip(item.plan.events, item.actor_ids, strict=True)
        if e.update >= from_update
    ]


def _record_fields(plan: CasePlan, job: ImportJob, now: dt.datetime) -> dict[str, Any]:
    return {
        "source_format": job.format,
        "source_key": plan.key[:100],
        "updates": plan.update_count,
        "digest": plan.digest,
        "case_version": plan.version,
        "job_id": job.pk,
        "imported_at": now,
    }


def _write_orm(new: list[Prepared], *, job: ImportJob, now: dt.datetime, existing_ids: dict[str, int]) -> int:
    """Any database (SQLite): ``bulk_create`` of the new cases and what they carry."""
    if not new:
        return 0
    cases = Case.objects.bulk_create([Case(**_case_fields(item)) for item in new])
    _link_follow_ups(
        new, {**existing_ids, **{i.plan.external_ref: c.pk for i, c in zip(new, cases, strict=True)}}
    )
    for item, case in zip(new, cases, strict=True):
        if item.follow_up_of_id is not None:
            Case.objects.filter(pk=case.pk).update(follow_up_of_id=item.follow_up_of_id)
    events: list[CaseEvent] = []
    clocks: list[SlaClock] = []
    records: list[ImportedCase] = []
    for case, item in zip(cases, new, strict=True):
        item.case_id = case.pk
        events += _events(item, case.pk)
        clocks += [SlaClock(case_id=case.pk, **c.as_fields()) for c in item.clocks]
        records.append(ImportedCase(case_id=case.pk, **_record_fields(item.plan, job, now)))
    CaseEvent.objects.bulk_create(events, batch_size=2000)
    SlaClock.objects.bulk_create(clocks, batch_size=2000)
    ImportedCase.objects.bulk_create(records, batch_size=2000)
    return len(events)


def _append(item: Prepared, case: Case, record: ImportedCase, *, job: ImportJob, now: dt.datetime) -> int:
    """New updates of a known case: their events appended, the case and its clocks recomputed."""
    Case.objects.filter(pk=case.pk).update(**_case_fields(item))
    events = _events(item, case.pk, from_update=record.updates)
    CaseEvent.objects.bulk_create(events)
    SlaClock.objects.filter(case_id=case.pk).delete()
    SlaClock.objects.bulk_create([SlaClock(case_id=case.pk, **c.as_fields()) for c in item.clocks])
    ImportedCase.objects.filter(case_id=case.pk).update(**_record_fields(item.plan, job, now))
    return len(events)
