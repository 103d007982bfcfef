"""How the core lets other apps react to case changes without importing them.

``case_event_recorded`` is sent *inside* the transaction that recorded a timeline event, right after
it was written, with ``case`` (locked for update), ``event`` and ``now``. Receivers keep their own
bookkeeping consistent with the case (the SLA app moves its clocks here) and raise to abort the
change. Anything that leaves the process (e-mail, webhooks, tasks) must be deferred by the receiver
with ``transaction.on_commit``. Apps connect in their ``AppConfig.ready()``.
"""

from django.dispatch import Signal

case_event_recorded = Signal()
