#!/usr/bin/env python
"""Import throughput and peak memory for a ServiceNow CSV and an XES log of a million rows/events.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_import SECRET_KEY=bench \\
        .venv/bin/python bench/bench_import.py [--rows 1000000] [--events 1000000] [--small 100000]

Generates (into ``--data-dir``, default ``var/bench-import``; kept and reused when the size matches)
a ServiceNow-style incident export with ``--rows`` rows (about 6 rows per incident, sorted by
number, dates in Europe/Berlin) and an XES log with about ``--events`` events, plus ``--small``
versions of both. Without ``--reuse`` the benchmark database is dropped and recreated first, and
again before each further format unless ``--same-database`` is given (its
name must contain "bench"). Each file is then imported in a fresh process with
``manage.py import_history`` (the default ServiceNow mapping; the XES example mapping), which
reports its wall time, the events written and its peak resident memory (``ru_maxrss``, and that
of the child process that prepares the batches). The small
files run first: the same peak memory for both sizes is what "constant memory" means. With
``--reimport`` the big CSV is imported a second time (nothing new: every case is skipped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402 - after the path is set

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_import"
BERLIN = "Europe/Berlin"
START = dt.datetime(2021, 1, 4, tzinfo=dt.UTC)
SPAN_DAYS = 720
SN_COLUMNS = (
    "number,incident_state,active,reassignment_count,reopen_count,sys_mod_count,made_sla,caller_id,"
    "opened_by,opened_at,sys_created_by,sys_created_at,sys_updated_by,sys_updated_at,contact_type,location,"
    "category,subcategory,u_symptom,impact,urgency,priority,assignment_group,assigned_to,knowledge,"
    "resolved_by,resolved_at,closed_at"
)
PRIORITIES = (("1 - Critical", 2), ("2 - High", 13), ("3 - Moderate", 55), ("4 - Low", 30))
XES_PRIORITIES = {"1 - Critical": "urgent", "2 - High": "high", "3 - Moderate": "normal", "4 - Low": "low"}
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the ServiceNow CSV")
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the XES log")
    parser.add_argument("--small", type=int, default=100_000, help="size of the small files (0: none)")
    parser.add_argument("--formats", default="servicenow-csv,xes", help="comma-separated formats to run")
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-import"))
    parser.add_argument("--reuse", action="store_true", help="keep the database (imports become re-imports)")
    parser.add_argument(
        "--same-database",
        action="store_true",
        help="import every format into the same database (later ones find the earlier ones' rows)",
    )
    parser.add_argument("--reimport", action="store_true", help="import the big CSV a second time")
    parser.add_argument("--batch-rows", type=int, default=None, help="rows per transaction")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("FORMAT", "PATH"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ================================================================================ data


class Story:
    """One incident's updates: (epoch seconds, state, actor, priority, group, assignee)."""

    def __init__(self, rng: random.Random, number: int) -> None:
        self.rng = rng
        self.number = number
        self.opened = START.timestamp() + rng.random() * SPAN_DAYS * DAY
        self.priority = rng.choices([p for p, _ in PRIORITIES], weights=[w for _, w in PRIORITIES])[0]
        self.caller = f"Caller {rng.randint(1, 5000)}"
        self.opener = f"Opened by {rng.randint(1, 300)}"
        self.category = f"Category {rng.randint(1, 60)}"
        self.updates: list[tuple[float, str, str, str, str, str]] = []
        self._plan()

    def _plan(self) -> None:
        rng = self.rng
        t = self.opened + rng.uniform(0, 10 * MIN)
        group = assignee = "?"
        agent = f"Updated by {rng.randint(1, 800)}"
        self._add(t, "New", self.opener, group, assignee)
        t += rng.uniform(5 * MIN, 4 * HOUR)
        group, assignee = f"Group {rng.randint(1, 60)}", f"Resolver {rng.randint(1, 250)}"
        self._add(t, "Active", agent, group, assignee)
        for _ in range(2):
            if rng.random() < 0.3:
                t += rng.uniform(10 * MIN, 6 * HOUR)
                self._add(t, rng.choice(["Awaiting User Info", "Awaiting Vendor"]), agent, group, assignee)
                t += rng.uniform(1 * HOUR, 2 * DAY)
                self._add(t, "Active", agent, group, assignee)
        if rng.random() < 0.1:
            t += rng.uniform(10 * MIN, 4 * HOUR)
            self.priority = rng.choice([p for p, _ in PRIORITIES])
            self._add(t, "Active", agent, group, assignee)
        t += rng.uniform(1 * HOUR, 5 * DAY)
        self._add(t, "Resolved", agent, group, assignee)
        if rng.random() < 0.08:
            t += rng.uniform(1 * HOUR, 3 * DAY)
            self._add(t, "Active", agent, group, assignee)
            t += rng.uniform(1 * HOUR, 2 * DAY)
            self._add(t, "Resolved", agent, group, assignee)
        if rng.random() < 0.9:
            self._add(t + 7 * DAY, "Closed", "Updated by 908", group, assignee)

    def _add(self, t: float, state: str, actor: str, group: str, assignee: str) -> None:
        self.updates.append((t, state, actor, self.priority, group, assignee))


class SnWriter:
    def __init__(self) -> None:
        from zoneinfo import ZoneInfo

        self.zone = ZoneInfo(BERLIN)

    def date(self, epoch: float) -> str:
        local = dt.datetime.fromtimestamp(epoch, self.zone)
        return f"{local.day:02d}/{local.month:02d}/{local.year} {local.hour:02d}:{local.minute:02d}"


def write_servicenow(path: Path, rows: int, seed: int, first: int) -> int:
    """A ServiceNow-style export of about ``rows`` rows (one per update), sorted by number."""
    rng = random.Random(seed)
    fmt = SnWriter()
    written = 0
    number = first
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        out.write(SN_COLUMNS + "\n")
        while written < rows:
            number += 1
            story = Story(rng, number)
            opened = fmt.date(story.opened)
            resolved_at = closed_at = "?"
            reopens = 0
            was_resolved = False
            for seq, (t, state, actor, priority, group, assignee) in enumerate(story.updates):
                if written >= rows:
                    break
                when = fmt.date(t)
                if state == "Resolved":
                    resolved_at, was_resolved = when, True
                elif state == "Closed":
                    closed_at = when
                elif was_resolved and state == "Active":
                    reopens += 1
                    was_resolved = False
                    resolved_at = "?"
                active = "false" if state == "Closed" else "true"
                out.write(
                    f"INC{number:07d},{state},{active},0,{reopens},{seq},true,{story.caller},{story.opener},"
                    f"{opened},{story.opener},{opened},{actor},{when},Phone,Location 1,{story.category},"
                    f"Subcategory 1,Symptom 1,2 - Medium,2 - Medium,{priority},{group},{assignee},false,"
                    f"{'Resolved by 1' if resolved_at != '?' else '?'},{resolved_at},{closed_at}\n"
                )
                written += 1
    tmp.replace(path)
    return written


XES_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <global scope="event"><string key="lifecycle:transition" value="complete"/></global>
"""
XES_STATES = {
    "New": "Open",
    "Active": "Work",
    "Awaiting User Info": "Wait for customer",
    "Awaiting Vendor": "Escalate",
    "Resolved": "Resolve",
    "Closed": "Close",
}


def write_xes(path: Path, events: int, seed: int, first: int) -> int:
    """An XES log of about ``events`` events, in the shape imports/mappings/xes-example.toml reads."""
    rng = random.Random(seed + 1)
    written = 0
    number = first
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(XES_HEAD)
        while written < events:
            number += 1
            story = Story(rng, number)
            lines = [
                "  <trace>\n",
                f'    <string key="concept:name" value="T-{number:07d}"/>\n',
                f'    <string key="customer" value="Customer {rng.randint(1, 200)}"/>\n',
                f'    <string key="requester" value="{story.caller}"/>\n',
                f'    <string key="subject" value={quoteattr(story.category + " trouble")}/>\n',
            ]
            was_resolved = False
            last_priority = None
            for t, state, actor, priority, group, _assignee in story.updates:
                activity = XES_STATES[state]
                extra = ""
                if state == "Active" and was_resolved:
                    lines.append(_xes_event("Reopen", "complete", t, actor, ""))
                    written += 1
                    was_resolved = False
                if priority != last_priority:
                    extra += f'      <string key="priority" value="{XES_PRIORITIES[priority]}"/>\n'
                    last_priority = priority
                if state == "Active" and group != "?":
                    extra += f'      <string key="group" value="{group}"/>\n'
                transition = "start" if activity == "Work" else "complete"
                if activity == "Work" and rng.random() < 0.5:
                    lines.append(_xes_event("Reply", "complete", t, actor, ""))
                    written += 1
                lines.append(_xes_event(activity, transition, t, actor, extra))
                written += 1
                was_resolved = state in ("Resolved", "Closed")
            lines.append("  </trace>\n")
            out.write("".join(lines))
        out.write("</log>\n")
    tmp.replace(path)
    return written


def _xes_event(activity: str, transition: str, t: float, actor: str, extra: str) -> str:
    stamp = dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
    return (
        "    <event>\n"
        f'      <string key="concept:name" value="{activity}"/>\n'
        f'      <string key="lifecycle:transition" value="{transition}"/>\n'
        f'      <date key="time:timestamp" value="{stamp}"/>\n'
        f'      <string key="org:resource" value="{actor}"/>\n'
        f"{extra}"
        "    </event>\n"
    )


def ensure_file(kind: str, path: Path, size: int, seed: int, first: int) -> None:
    """Write the file unless it is there with the same size and seed. ``first``: the first case
    number, so the small and big files hold different cases."""
    meta = path.with_suffix(path.suffix + ".json")
    wanted = {"size": size, "seed": seed, "first": first}
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == wanted:
        print(f"Reusing {path} ({path.stat().st_size / 1e6:,.0f} MB).")
        return
    started = time.monotonic()
    count = (write_servicenow if kind == "servicenow-csv" else write_xes)(path, size, seed, first)
    meta.write_text(json.dumps(wanted))
    print(
        f"Wrote {path} ({count:,} {'rows' if kind == 'servicenow-csv' else 'events'}, "
        f"{path.stat().st_size / 1e6:,.0f} MB) in {time.monotonic() - started:.0f} s."
    )


# ================================================================================ running


def child(fmt: str, path: str, batch_rows: int | None) -> None:
    """Run one import in this (fresh) process and print its figures as JSON on the last line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    import django

    django.setup()
    from django.utils import timezone

    from imports import services
    from imports.mapping import default_mapping_text

    job = services.create_job(
        format=fmt,
        mapping_text=default_mapping_text(fmt),
        mapping_name="default",
        now=timezone.now(),
        path=path,
        time_zone=BERLIN if fmt == "servicenow-csv" else "",
    )
    started = time.monotonic()
    kwargs = {"batch_rows": batch_rows} if batch_rows else {}
    job = services.run_import(job, now=timezone.now(), **kwargs)
    seconds = time.monotonic() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The process that reads and prepares the batches (forked by the import; 0 if none ran).
    child_peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "status": job.status,
                "error": job.error,
                "seconds": seconds,
                "rows": job.rows_read,
                "cases": job.cases_created + job.cases_updated,
                "unchanged": job.cases_unchanged,
                "events": job.events_created,
                "rejected": job.cases_rejected,
                "peak_mb": peak_kb / 1024,
                "child_peak_mb": child_peak_kb / 1024,
            }
        )
    )


def run(fmt: str, path: Path, batch_rows: int | None) -> dict:
    command = [sys.executable, __file__, "--child", fmt, str(path)]
    if batch_rows:
        command += ["--batch-rows", str(batch_rows)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"Import of {path} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.batch_rows)
        return
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    ensure_database(os.environ["DATABASE_URL"], recreate=not args.reuse, script="bench_import.py")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    plan: list[tuple[str, Path, int]] = []
    for fmt in formats:
        big = args.rows if fmt == "servicenow-csv" else args.events
        ext = "csv" if fmt == "servicenow-csv" else "xes"
        if args.small:
            plan.append((fmt, data / f"small.{ext}", args.small))
        plan.append((fmt, data / f"big.{ext}", big))
    for fmt, path, size in plan:
        small = path.name.startswith("small")
        ensure_file(fmt, path, size, args.seed + (0 if small else 1), 5_000_000 if small else 0)

    results = []
    for fmt in formats:
        if fmt != formats[0] and not (args.reuse or args.same_database):
            # Each format starts from an empty database, as a team's first import does.
            from django.db import connections

            connections.close_all()
            ensure_database(os.environ["DATABASE_URL"], recreate=True, script="bench_import.py")
            call_command("migrate", verbosity=0)
        for path in [p for f, p, _size in plan if f == fmt]:
            print(f"Importing {path.name} ({fmt}) ...", flush=True)
            figures = run(fmt, path, args.batch_rows)
            results.append((fmt, path.name, figures))
            print(f"  {json.dumps(figures)}", flush=True)
        if args.reimport and fmt == "servicenow-csv":
            print("Importing big.csv again (nothing new) ...", flush=True)
            figures = run("servicenow-csv", data / "big.csv", args.batch_rows)
            results.append(("servicenow-csv", "big.csv (again)", figures))

    print(
        f"\n{'format':<15} {'file':<17} {'rows/events':>12} {'cases':>9} {'events':>10} {'seconds':>8} "
        f"{'events/s':>9} {'rows/s':>9} {'peak MB':>8} {'child MB':>8}"
    )
    print("-" * 112)
    for fmt, name, f in results:
        print(
            f"{fmt:<15} {name:<17} {f['rows']:>12,} {f['cases']:>9,} {f['events']:>10,} {f['seconds']:>8.1f} "
            f"{f['events'] / f['seconds']:>9,.0f} {f['rows'] / f['seconds']:>9,.0f} {f['peak_mb']:>8.0f} "
            f"{f.get('child_peak_mb', 0):>8.0f}"
        )


if __name__ == "__main__":
    main()
