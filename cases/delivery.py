"""What the case core does when the outbox gives up on a reply: the case's owner hears about it.

Connected to ``supportdesk.core.outbox.delivery_failed`` in ``CasesConfig.ready()``; runs inside the
transaction that marks the mail failed, so the notification and the failure are recorded together.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from supportdesk.core.models import MailKind, OutboundMessage
from supportdesk.core.roles import active_managers
from supportdesk.core.services import notify

from .models import Case

if TYPE_CHECKING:
    from django.contrib.auth.models import User

REPLY_NOT_DELIVERED = "reply_not_delivered"


def case_owners(case: Case) -> list[User]:
    """Who answers for a case: its assignee, else its team's members, else the managers."""
    if case.assignee is not None and case.assignee.is_active:
        return [case.assignee]
    if case.team is not None:
        members = list(case.team.members.filter(is_active=True))
        if members:
            return members
    return active_managers()


def on_delivery_failed(
    sender: object, *, message: OutboundMessage, now: dt.datetime, **kwargs: object
) -> None:
    if message.kind != MailKind.REPLY or message.case_id is None:
        return
    case = Case.objects.select_related("assignee", "team").filter(pk=message.case_id).first()
    if case is None:
        return
    title = f"{case.key}: a reply could not be delivered to {', '.join(message.to)}"
    body = f"{case.title}\nAfter {message.attempts} attempt(s): {message.last_error}"
    for person in case_owners(case):
        notify(
            recipient=person,
            kind=REPLY_NOT_DELIVERED,
            title=title,
            body=body,
            url=case.get_absolute_url(),
            now=now,
        )
