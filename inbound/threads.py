"""Which case a received mail belongs to, and the addresses and headers that let a customer's answer
find its way back.

Rules, in order (the first that matches wins):

1. ``token``: a recipient is a case's signed reply address, ``support+CASE-12-<signature>@...``,
   which SupportDesk puts in Reply-To on its mails to customers. The signature is an HMAC of the
   case id with the site's secret key: nobody can write into a case by guessing its key.
2. ``headers``: In-Reply-To or References name a mail SupportDesk sent about a case (the outbox's
   Message-IDs) or a customer mail already on a case.
3. ``subject``: the subject carries ``[CASE-12]`` and the sender is that case's requester or a CC.
   A stranger's ``[CASE-12]`` opens a new case instead: the tag alone proves nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from cases.models import Case
from supportdesk.core import outbox
from supportdesk.core.models import OutboundMessage
from supportdesk.core.roles import Role

from .models import InboundMessage, Mailbox
from .parse import ParsedMail

_SALT = "supportdesk.inbound.reply-address"
_TOKEN_RE = re.compile(r"^(?P<local>[^+@]+)\+case-(?P<id>\d{1,18})-(?P<sig>[0-9a-f]{16})@(?P<domain>.+)$")
SUBJECT_TAG_RE = re.compile(r"\[CASE-(\d{1,18})\]", re.IGNORECASE)


def signature(case_id: int, *, secret: str | None = None) -> str:
    return salted_hmac(_SALT, str(case_id), secret=secret, algorithm="sha256").hexdigest()[:16]


def _valid_signature(case_id: int, given: str) -> bool:
    """Signed with the current secret key, or one it replaced (``SECRET_KEY_FALLBACKS``): rotating the
    key must not cut every open conversation off its case."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(constant_time_compare(given, signature(case_id, secret=secret)) for secret in secrets)


def reply_address(mailbox_address: str, case_id: int) -> str:
    """``local+case-<id>-<signature>@domain`` (sub-addressing, RFC 5233: delivered to ``local@domain``)."""
    local, _, domain = mailbox_address.partition("@")
    return f"{local}+case-{case_id}-{signature(case_id)}@{domain}"


def case_from_reply_address(address: str) -> tuple[int, str] | None:
    """(case id, the mailbox address it was derived from) when ``address`` is a genuine reply address."""
    match = _TOKEN_RE.match(address.strip().lower())
    if match is None:
        return None
    case_id = int(match["id"])
    if not _valid_signature(case_id, match["sig"]):
        return None
    return case_id, f"{match['local']}@{match['domain']}"


# --- outbound: who a case's mail is from, and what it answers ----------------------------------


def mailbox_for_case(case_id: int) -> Mailbox | None:
    """The mailbox the case's customer last wrote to, else one routing to the case's team, else the
    first active mailbox."""
    last = (
        InboundMessage.objects.filter(case_id=case_id)
        .order_by("-received_at", "-id")
        .values_list("mailbox_id", flat=True)
        .first()
    )
    active = Mailbox.objects.filter(is_active=True)
    if last is not None:
        mailbox = active.filter(pk=last).first()
        if mailbox is not None:
            return mailbox
    team_id = Case.objects.filter(pk=case_id).values_list("team_id", flat=True).first()
    if team_id is not None:
        mailbox = active.filter(team_id=team_id).order_by("pk").first()
        if mailbox is not None:
            return mailbox
    return active.order_by("pk").first()


def case_sender(case_id: int) -> outbox.Sender | None:
    mailbox = mailbox_for_case(case_id)
    if mailbox is None:
        return None
    return outbox.Sender(from_email=mailbox.from_header, reply_to=reply_address(mailbox.address, case_id))


def customer_last_mail(case_id: int) -> outbox.Thread | None:
    """A reply continues the customer's last mail on the case (when there is one)."""
    last = (
        InboundMessage.objects.filter(case_id=case_id)
        .exclude(message_id__startswith="<sha256-")
        .order_by("-received_at", "-id")
        .values_list("message_id", "references")
        .first()
    )
    if last is None:
        return None
    message_id, references = last
    return outbox.Thread.after(message_id, references.split())


# --- inbound: which case a mail is about -------------------------------------------------------


@dataclass(frozen=True)
class Match:
    case: Case
    rule: str  # token, headers or subject


def _case(case_id: int) -> Case | None:
    return Case.objects.select_related("requester", "organisation").filter(pk=case_id).first()


def by_token(mail: ParsedMail) -> Case | None:
    for address in mail.recipients:
        found = case_from_reply_address(address)
        if found is not None:
            return _case(found[0])
    return None


def by_headers(mail: ParsedMail, *, mailbox: Mailbox) -> Case | None:
    ids = list(dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)]))[:50]
    if not ids:
        return None
    # Only the mails a customer answers: a notification to staff names its case too, but a
    # staff member's answer to it is not the customer's words.
    sent = dict(
        OutboundMessage.objects.filter(
            message_id__in=ids, case_id__isnull=False, kind__in=outbox.CUSTOMER_KINDS
        ).values_list("message_id", "case_id")
    )
    received = dict(
        InboundMessage.objects.filter(message_id__in=ids, case_id__isnull=False).values_list(
            "message_id", "case_id"
        )
    )
    for message_id in ids:  # the direct parent first, then the thread from the newest back
        case_id = sent.get(message_id) or received.get(message_id)
        if case_id is not None:
            case = _case(case_id)
            if case is not None:
                return case
    return None


def by_subject(mail: ParsedMail) -> Case | None:
    for tag in SUBJECT_TAG_RE.findall(mail.subject):
        case = _case(int(tag))
        if case is None:
            continue
        if case.requester.email.lower() == mail.from_address:
            return case
        if case.cc.filter(email__iexact=mail.from_address).exists():
            return case
    return None


def find_case(mail: ParsedMail, *, mailbox: Mailbox) -> Match | None:
    case = by_token(mail)
    if case is not None:
        return Match(case, "token")
    case = by_headers(mail, mailbox=mailbox)
    if case is not None:
        return Match(case, "headers")
    case = by_subject(mail)
    if case is not None:
        return Match(case, "subject")
    return None


def own_addresses() -> set[str]:
    """SupportDesk's own addresses: a mail from one of them is our own mail come back (a loop)."""
    from email.utils import parseaddr

    addresses = {a.lower() for a in Mailbox.objects.values_list("address", flat=True)}
    for configured in (settings.DEFAULT_FROM_EMAIL, getattr(settings, "SERVER_EMAIL", "")):
        address = parseaddr(configured or "")[1].lower()
        if address:
            addresses.add(address)
    return addresses


def is_staff_address(address: str) -> bool:
    """The address of an active SupportDesk user (an agent, a manager, an engineer, an admin)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    users = get_user_model().objects.filter(is_active=True, email__iexact=address)
    return users.filter(Q(is_superuser=True) | Q(groups__name__in=[r.value for r in Role])).exists()


def is_own_address(address: str, *, own: set[str] | None = None) -> bool:
    """``address`` is SupportDesk's (``own``: ``own_addresses()`` when the caller has it already)."""
    address = address.lower()
    if case_from_reply_address(address) is not None:
        return True
    return address in (own_addresses() if own is None else own)


__all__ = ["Match", "find_case", "reply_address", "case_from_reply_address"]
