#!/usr/bin/env python
"""Inbound mail ingestion throughput into a large database (a script, not a test).

    .venv/bin/python bench/bench_inbound.py --count 1000000 --mails 3000 [--workers 2] [--reuse]

Creates the PostgreSQL database of ``DATABASE_URL`` (default ``bench_inbound``) if it is missing,
migrates it, loads ``--count`` cases with ``manage.py generate_cases`` (kept between runs with
``--reuse``), then builds ``--mails`` realistic customer mails and feeds them through
``inbound.services.receive`` (the path every way in shares: IMAP, Maildir, the pipe command and
provider webhooks) in ``--workers`` processes at once. The mix, like a support mailbox's day:

* 45 % new customer mails from known contacts (organisation by the sender's domain): a new case;
* 10 % new mails from unknown people at a customer's domain: a new contact and a new case;
* 25 % answers to open cases through the signed reply address (the case moves if it waited);
* 10 % answers by ``[CASE-n]`` in the subject from the case's requester;
* 5 % answers to cases closed long ago: a follow-up case linked to the old one;
* 5 % auto-replies (out of office): recorded and ignored.

Every mail carries a small text attachment one time in five. Prints mails per second (wall time
over all workers), the per-mail latency median and p95, the queries per mail of each kind, and what
became of the mails. The raw mails and attachments go to a temporary MEDIA_ROOT.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402 - after the path is set

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_inbound"
MAILBOX = "bench"
KINDS = (
    ("new_known", 45),
    ("new_stranger", 10),
    ("token_reply", 25),
    ("subject_reply", 10),
    ("closed_reply", 5),
    ("auto_reply", 5),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="cases in the database (default 1M)")
    parser.add_argument("--mails", type=int, default=3000, help="mails to ingest (default 3000)")
    parser.add_argument("--workers", type=int, default=2, help="processes ingesting at once (default 2)")
    parser.add_argument("--reuse", action="store_true", help="keep the database; only add missing cases")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def setup_environment() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    # Ingestion sends no task (owners get in-app notifications); a single-machine broker will do.
    os.environ.setdefault("SUPPORTDESK_ALLOW_FILESYSTEM_BROKER", "true")
    os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="bench-inbound-media-"))
    os.environ.setdefault("SUPPORTDESK_VAR_DIR", tempfile.mkdtemp(prefix="bench-inbound-var-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _mail(
    *, sender: tuple[str, str], to: str, subject: str, body: str, when, number: int, **headers
) -> bytes:
    message = EmailMessage()
    message["From"] = f"{sender[0]} <{sender[1]}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = f"<bench-{number}-{random.getrandbits(48):x}@{sender[1].rpartition('@')[2]}>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    if number % 5 == 0:
        log = "".join(f"2026-12-02T08:{i:02d}:00Z request {i} took {100 + i} ms\n" for i in range(40))
        message.add_attachment(log.encode(), maintype="text", subtype="plain", filename="request.log")
    return message.as_bytes()


BODY = (
    "Hello,\n\nsince this morning the report export stops with an error after a few minutes. We tried "
    "two browsers and a smaller date range; the small range works. Could you have a look?\n\n"
    "Thanks,\n{name}\n\nOn Tue, 1 Dec 2026 at 10:00, Support <help@bench.example> wrote:\n> Earlier text\n"
)


def build_mails(count: int, *, seed: int, mailbox_address: str) -> list[tuple[str, bytes]]:
    from django.db.models import Q
    from django.utils import timezone

    from cases.models import OPEN_Q, Case, Contact, Status
    from inbound.threads import reply_address

    rng = random.Random(seed)
    random.seed(seed)
    now = timezone.now()
    max_id = Case.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    contacts = list(Contact.objects.order_by("?").values_list("name", "email")[:5000])
    domains = sorted({email.rpartition("@")[2] for _, email in contacts})

    def random_cases(query, n: int) -> list[tuple[int, str, str, str]]:
        picked: list[tuple[int, str, str, str]] = []
        tries = 0
        while len(picked) < n and tries < 50:
            tries += 1
            ids = [rng.randint(1, max_id) for _ in range(n * 3)]
            picked.extend(
                Case.objects.filter(query, pk__in=ids).values_list(
                    "pk", "title", "requester__name", "requester__email"
                )[: n - len(picked)]
            )
        return picked

    kinds = [k for k, w in KINDS for _ in range(w)]
    plan = [kinds[rng.randrange(len(kinds))] for _ in range(count)]
    tally = Counter(plan)
    open_cases = random_cases(OPEN_Q, tally["token_reply"] + tally["subject_reply"])
    closed_cases = random_cases(Q(status=Status.CLOSED), tally["closed_reply"])
    mails: list[tuple[str, bytes]] = []
    for number, kind in enumerate(plan):
        if kind in ("token_reply", "subject_reply") and open_cases:
            pk, title, name, email = open_cases.pop()
            to = reply_address(mailbox_address, pk) if kind == "token_reply" else mailbox_address
            raw = _mail(
                sender=(name, email),
                to=to,
                subject=f"Re: [CASE-{pk}] {title}",
                body=BODY.format(name=name),
                when=now,
                number=number,
            )
        elif kind == "closed_reply" and closed_cases:
            pk, title, name, email = closed_cases.pop()
            raw = _mail(
                sender=(name, email),
                to=reply_address(mailbox_address, pk),
                subject=f"Re: [CASE-{pk}] {title}",
                body=BODY.format(name=name),
                when=now,
                number=number,
            )
        elif kind == "auto_reply":
            name, email = contacts[rng.randrange(len(contacts))]
            raw = _mail(
                sender=(name, email),
                to=mailbox_address,
                subject="Automatic reply: Out of office",
                body="I am out of the office until Monday.",
                when=now,
                number=number,
                Auto_Submitted="auto-replied",
            )
        elif kind == "new_stranger":
            domain = domains[rng.randrange(len(domains))]
            person = f"new.person{number}"
            raw = _mail(
                sender=(f"New Person {number}", f"{person}@{domain}"),
                to=mailbox_address,
                subject=f"Question about invoice {number}",
                body=BODY.format(name="New Person"),
                when=now,
                number=number,
            )
        else:
            kind = "new_known"
            name, email = contacts[rng.randrange(len(contacts))]
            raw = _mail(
                sender=(name, email),
                to=mailbox_address,
                subject=f"Export fails for report {number}",
                body=BODY.format(name=name),
                when=now,
                number=number,
            )
        mails.append((kind, raw))
    return mails


def _ingest(chunk: list[tuple[str, bytes]]) -> list[tuple[str, float, int, str]]:
    """One worker: its own connection, the mails one after another (as a poller would)."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from inbound.models import Mailbox
    from inbound.services import receive

    connection.close()
    mailbox = Mailbox.objects.get(name=MAILBOX)
    results = []
    for kind, raw in chunk:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            received = receive(mailbox, raw, now=timezone.now(), via="pipe")
        elapsed = time.perf_counter() - started
        results.append((kind, elapsed, len(queries), received.message.status))
    return results


def _queries(rows) -> str:
    # Counted in the first process only: a spawned pool's workers report none (shown as "-").
    median = statistics.median(r[2] for r in rows)
    return f"{median:.0f}" if median else "-"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_environment()
    ensure_database(os.environ["DATABASE_URL"], recreate=False, script="bench_inbound.py")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from cases.models import Case, Contact, Organisation, OrganisationDomain, Team
    from inbound.models import InboundMessage, Mailbox, MailboxMode

    call_command("migrate", verbosity=0)
    existing = Case.objects.count()
    if existing < args.count:
        print(f"Loading {args.count - existing:,} cases with generate_cases ...")
        started = time.monotonic()
        call_command("generate_cases", count=args.count - existing, batch=50_000, seed=args.seed + existing)
        print(f"Load time: {time.monotonic() - started:.1f} s.")
    mailbox, _ = Mailbox.objects.get_or_create(
        name=MAILBOX,
        defaults={"address": "help@bench.example", "mode": MailboxMode.PIPE, "team": Team.objects.first()},
    )
    # Every generated organisation's contacts share a domain: register them as its e-mail domains.
    if not OrganisationDomain.objects.exists():
        domains = {}
        for org_id, email in Contact.objects.values_list("organisation_id", "email").iterator():
            domains.setdefault(email.rpartition("@")[2].lower(), org_id)
        OrganisationDomain.objects.bulk_create(
            [OrganisationDomain(domain=d, organisation_id=o) for d, o in domains.items()],
            ignore_conflicts=True,
        )
    print(
        f"PostgreSQL: {Case.objects.count():,} cases, {Organisation.objects.count():,} organisations, "
        f"{OrganisationDomain.objects.count():,} domains, {InboundMessage.objects.count():,} mails already "
        "received."
    )
    print(f"Building {args.mails:,} mails ...")
    mails = build_mails(
        args.mails, seed=args.seed + InboundMessage.objects.count(), mailbox_address=mailbox.address
    )
    connection.close()

    workers = max(1, args.workers)
    chunks = [mails[i::workers] for i in range(workers)]
    print(f"Ingesting with {workers} process(es) ...")
    started = time.monotonic()
    if workers == 1:
        results = _ingest(chunks[0])
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = [r for part in pool.map(_ingest, chunks) for r in part]
    wall = time.monotonic() - started

    latencies = [r[1] * 1000 for r in results]
    print(
        f"\n{len(results):,} mails in {wall:.1f} s: {len(results) / wall:.1f} mails/s "
        f"({workers} process(es); per mail median {statistics.median(latencies):.1f} ms, "
        f"p95 {percentile(latencies, 0.95):.1f} ms)"
    )
    print(f"\n{'kind':<15} {'mails':>6} {'median ms':>10} {'queries':>8}  outcomes")
    for kind, _ in KINDS:
        rows = [r for r in results if r[0] == kind]
        if not rows:
            continue
        outcomes = Counter(r[3] for r in rows)
        print(
            f"{kind:<15} {len(rows):>6} {statistics.median(r[1] * 1000 for r in rows):>10.1f} "
            f"{_queries(rows):>8}  " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        )


if __name__ == "__main__":
    main()
