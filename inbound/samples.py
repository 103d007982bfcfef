"""Realistic customer mails for the demo and for trying the Maildir mailbox (``make sample-mail``)."""

from __future__ import annotations

import datetime as dt
import mailbox as stdlib_mailbox
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import NotRequired, TypedDict

from cases.models import Case, Status

from .models import Mailbox
from .polling import maildir_path
from .threads import reply_address

# A tiny valid PNG (1x1, grey): an attachment the product's content check accepts.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763686868000003040181a1e2a20000000049454e44ae426082"
)

# "from" is a keyword: the functional form.
SampleMail = TypedDict(
    "SampleMail",
    {"from": tuple[str, str], "subject": str, "body": str, "log": NotRequired[str], "png": NotRequired[bool]},
)

NEW_CASE_MAILS: list[SampleMail] = [
    {
        "from": ("Jana Hoffmann", "jana.hoffmann@northwind.example"),
        "subject": "CSV export times out since this morning",
        "body": (
            "Hello support team,\n\n"
            "since about 08:30 our nightly CSV export of the orders report stops after two minutes "
            'with "504 Gateway Timeout". Smaller date ranges (one week) still work; a full month '
            "fails every time. Nothing changed on our side.\n\n"
            "The export log of the last run is attached. Could you have a look? Our finance team "
            "needs the month-end numbers by Friday.\n\n"
            "Kind regards,\nJana Hoffmann\nIT Operations, Northwind Traders\n"
        ),
        "log": (
            "2026-12-02T08:31:04Z export started range=2026-11-01..2026-11-30 rows=1843220\n"
            "2026-12-02T08:33:04Z upstream timed out after 120 s (504)\n"
        ),
    },
    {
        "from": ("Marcus Reed", "marcus.reed@globex.example"),
        "subject": "SSO login loop for new employees",
        "body": (
            "Hi,\n\nnew hires who log in through our Okta tile end up in a redirect loop between the "
            "login page and the dashboard. Existing users are fine. Screenshot attached.\n\n"
            "Thanks,\nMarcus\n\n-- \nMarcus Reed | Globex Retail | Identity team\n"
        ),
        "png": True,
    },
]


def _message(*, sender, to: str, subject: str, body: str, now: dt.datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"{sender[0]} <{sender[1]}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender[1].rpartition("@")[2])
    message["User-Agent"] = "Mozilla Thunderbird"
    message.set_content(body)
    return message


def new_case_mail(mailbox: Mailbox, *, index: int, now: dt.datetime) -> bytes:
    spec = NEW_CASE_MAILS[index % len(NEW_CASE_MAILS)]
    message = _message(
        sender=spec["from"], to=mailbox.address, subject=spec["subject"], body=spec["body"], now=now
    )
    if spec.get("log"):
        message.add_attachment(spec["log"].encode(), maintype="text", subtype="plain", filename="export.log")
    if spec.get("png"):
        message.add_attachment(PNG_1X1, maintype="image", subtype="png", filename="login-loop.png")
    return message.as_bytes()


def reply_mail(mailbox: Mailbox, case: Case, *, now: dt.datetime) -> bytes:
    """The requester's answer to the case's last reply, sent to the case's reply address."""
    from supportdesk.core.models import MailKind, OutboundMessage

    requester = case.requester
    message = _message(
        sender=(requester.name, requester.email),
        to=reply_address(mailbox.address, case.pk),
        subject=f"Re: [{case.key}] {case.title}",
        body=(
            "Hi,\n\nthanks, I tried what you suggested. It works again on my machine, but two of my "
            "colleagues still see the problem. What else do you need from us?\n\nBest,\n"
            f"{requester.name}\n"
        ),
        now=now,
    )
    last = (
        OutboundMessage.objects.filter(case_id=case.pk, kind=MailKind.REPLY)
        .order_by("-created_at", "-id")
        .values_list("message_id", flat=True)
        .first()
    )
    if last:
        message["In-Reply-To"] = last
        message["References"] = last
    return message.as_bytes()


def waiting_case() -> Case | None:
    return Case.objects.filter(status=Status.WAITING_ON_CUSTOMER).order_by("-updated_at").first()


def drop(mailbox: Mailbox, raw: bytes) -> str:
    """Deliver a mail into the mailbox's Maildir (new/), as a local mail server would."""
    path = maildir_path(mailbox)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = stdlib_mailbox.Maildir(path, factory=None, create=True)
    return folder.add(raw)
