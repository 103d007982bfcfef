"""How the core lets other apps react to case changes without importing them.

``case_event_recorded`` is sent *inside* the transaction that recorded a timeline event, right after
it was written, with ``case`` (locked for update), ``event`` and ``now``. Receivers keep their own
bookkeeping consistent with the case (the SLA app moves its clocks here, the metrics rollup marks
the days a change alters) and raise to abort the change. Anything that leaves the process (e-mail,
webhooks, tasks) must be deferred by the receiver with ``transaction.on_commit``. Apps connect in
their ``AppConfig.ready()``.

``organisation_changed`` is sent the same way by ``cases.organisations.update_organisation``, inside
its transaction, with ``organisation`` (locked), ``changes`` (``{field: (old, new)}``, only the fields
that really changed), ``actor`` and ``now``.
"""

from django.dispatch import Signal

case_event_recorded = Signal()
organisation_changed = Signal()
