from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import polling


@shared_task(name="mail.poll_mailboxes", acks_late=True, ignore_result=True, time_limit=60)
def poll_mailboxes() -> int:
    """Beat, every INBOUND_POLL_SECONDS: one ``mail.poll_mailbox`` per active polled mailbox."""
    ids = list(polling.pollable().values_list("pk", flat=True))
    for mailbox_id in ids:
        poll_mailbox.delay(mailbox_id)
    return len(ids)


# A poll stops claiming new mail after INBOUND_POLL_BUDGET_SECONDS (45 s by default); the IMAP
# connection has its own timeout. The limits only stop a worker that is stuck regardless.
@shared_task(
    name="mail.poll_mailbox", acks_late=True, ignore_result=True, soft_time_limit=240, time_limit=300
)
def poll_mailbox(mailbox_id: int) -> dict:
    result = polling.poll(mailbox_id, now=timezone.now())
    return {"mailbox": result.mailbox, "polled": result.polled, "fetched": result.fetched}
