"""The configuration audit trail: who changed which setting, when, from what to what.

django-simple-history keeps one history table per tracked model (a row per save, delete or
many-to-many change, with the values, the instant and the user). This module holds what the
project adds to it:

- ``AuditedHistory``, the project's ``HistoricalRecords``: a save that changes nothing the trail
  keeps writes no row (a login's ``last_login``, a token's ``last_used_at``); the user is a plain
  id (a deleted user's changes keep their author); a secret field is never copied, only the fact
  that it changed (``secret_changed``); many-to-many changes made from the other side are
  recorded on the tracked side too.
- ``acting_as``: who a change made outside a request is attributed to (a service given an actor,
  an import job, a management command). Without it and without a signed-in request user, a change
  is the system's (``history_user_id`` NULL).
- ``TRACKED``: every model with an ``AuditedHistory``, by ``app_label.model_name``; the
  "Configuration changes" page and API read them through ``supportdesk.core.audit_selectors``.

Each app declares ``history = AuditedHistory(...)`` on its own models, so ``supportdesk.core``
imports no app; the users (role grants) are registered in ``supportdesk.core.models``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models.signals import pre_save
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record
from simple_history.utils import get_change_reason_from_object


@dataclass(frozen=True)
class _Acting:
    user_id: int | None
    reason: str


_acting: contextvars.ContextVar[_Acting | None] = contextvars.ContextVar("audit_acting", default=None)

#: The reason of a row's state recorded just before its first recorded change (see
#: ``AuditedHistory._ensure_baseline``): the "before" of that change, not a change of its own.
BASELINE_REASON = "State before its first recorded change"

#: ``app_label.model_name`` -> tracked model, filled as the models are prepared.
TRACKED: dict[str, type[models.Model]] = {}
#: Tracked model -> the ``AuditedHistory`` that tracks it.
RECORDS: dict[type[models.Model], AuditedHistory] = {}


@contextlib.contextmanager
def acting_as(user=None, *, reason: str = "") -> Iterator[None]:
    """Attribute the tracked changes made inside the block to ``user`` (None: the system), with
    an optional reason ("import job 12", "manage.py create_api_token"); wins over the request's user."""
    token = _acting.set(_Acting(getattr(user, "pk", None), reason[:100]))
    try:
        yield
    finally:
        _acting.reset(token)


def _acting_user(instance=None, request=None, **kwargs):
    acting = _acting.get()
    if acting is not None:
        return _UserRef(acting.user_id) if acting.user_id is not None else None
    return request.user if request is not None else None


@dataclass(frozen=True)
class _UserRef:
    """Enough of a user for simple-history's setter (it stores ``pk``) without loading the row."""

    pk: int


def _user_by_id(historical_instance):
    from django.contrib.auth import get_user_model

    if historical_instance.history_user_id is None:
        return None
    return get_user_model().objects.filter(pk=historical_instance.history_user_id).first()


class SecretChangeFlag(models.Model):
    """Added to the history of a model with a secret: the secret itself is never copied."""

    secret_changed = models.BooleanField(
        default=False, help_text="The secret was changed by this save (its value is not kept)."
    )

    class Meta:
        abstract = True


class AuditedHistory(HistoricalRecords):
    """``HistoricalRecords`` as the configuration audit trail needs it (see the module docstring).

    ``kind_label`` names the tracked model on the page ("SLA policies"); ``describe`` names one
    object there (default ``str``; its foreign keys are loaded); ``confidential_field`` is a field
    whose value must never reach the history (only ``secret_changed`` says that it changed).
    """

    def __init__(
        self,
        *,
        kind_label: str = "",
        describe: Callable[[Any], str] | None = None,  # called with a row of the tracked model
        confidential_field: str | None = None,
        **kwargs,
    ):
        excluded = list(kwargs.pop("excluded_fields", None) or [])
        if confidential_field:
            excluded.append(confidential_field)
            kwargs.setdefault("bases", (SecretChangeFlag,))
        kwargs.setdefault("get_user", _acting_user)
        # A plain id, not a foreign key: deleting a user keeps who made their changes (and does not
        # rewrite every history table).
        kwargs.setdefault(
            "history_user_id_field", models.BigIntegerField(null=True, blank=True, db_index=True)
        )
        kwargs.setdefault("history_user_getter", _user_by_id)
        kwargs.setdefault("history_id_field", models.BigAutoField(primary_key=True))
        super().__init__(excluded_fields=excluded, **kwargs)
        self.kind_label = kind_label
        self.describe = describe
        self.confidential_field = confidential_field

    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        if sender is not self.cls:
            return  # another model's class_prepared
        self.kind_label = self.kind_label or str(sender._meta.verbose_name_plural).capitalize()
        RECORDS[sender] = self
        TRACKED[sender._meta.label_lower] = sender
        pre_save.connect(self._before_save, sender=sender, weak=False)
        if self.confidential_field:
            pre_save.connect(self._note_secret_change, sender=sender, weak=False)
            history_model = getattr(sender, self.manager_name).model
            pre_create_historical_record.connect(self._flag_secret_change, sender=history_model, weak=False)

    # --- what is recorded -------------------------------------------------------------------------

    def _kept(self, update_fields) -> bool:
        return update_fields is None or bool(
            set(update_fields) & {f.name for f in self.fields_included(self.cls)}
        )

    def _attnames(self) -> list[str]:
        return [f.attname for f in self.fields_included(self.cls)]

    def _latest_values(self, pk) -> dict | None:
        history_model = getattr(self.cls, self.manager_name).model
        return (
            history_model._default_manager.filter(**{self.cls._meta.pk.attname: pk})
            .order_by("-history_date", "-history_id")
            .values(*self._attnames())
            .first()
        )

    def _ensure_baseline(self, pk) -> dict | None:
        """The latest recorded values of row ``pk``. A row without any (written before the trail
        began, or by a path that bypasses it) first gets its stored state recorded, so its first
        change shows what it was before."""
        latest = self._latest_values(pk)
        if latest is not None:
            return latest
        stored = self.cls._default_manager.filter(pk=pk).first()
        if stored is None:
            return None
        stored._history_user = None
        stored._change_reason = BASELINE_REASON
        self.create_historical_record(stored, "~")
        return {name: getattr(stored, name) for name in self._attnames()}

    def _before_save(self, sender, instance, raw=False, update_fields=None, **kwargs) -> None:
        instance._audit_latest = None
        if raw or instance.pk is None or instance._state.adding or not self._kept(update_fields):
            return
        instance._audit_latest = self._ensure_baseline(instance.pk)

    def post_save(self, instance, created, using=None, **kwargs):
        if not self._kept(kwargs.get("update_fields")):
            return  # e.g. the last login time at each login: nothing the trail keeps, no query
        latest = getattr(instance, "_audit_latest", None)
        if (
            not created
            and latest is not None
            and not getattr(instance, "_audit_secret_changed", False)
            and all(latest[name] == getattr(instance, name) for name in self._attnames())
        ):
            return  # saved without a change the trail keeps
        super().post_save(instance, created, using=using, **kwargs)

    def m2m_changed(self, instance, action, attr, pk_set, reverse, **kwargs):
        if action in ("pre_add", "pre_remove", "post_add", "post_remove") and not pk_set:
            return  # adding what was there already, removing what was not
        if not reverse:
            if action.startswith("pre_"):
                self._ensure_baseline(instance.pk)
                return
            super().m2m_changed(instance, action, attr, pk_set, reverse, **kwargs)
            return
        # Changed from the other side (``team.engineer_scopes.add(scope)``): record each tracked
        # object whose set changed.
        through = kwargs["sender"]
        field = getattr(self.cls, attr).field
        source = field.m2m_field_name()
        target = field.m2m_reverse_field_name()
        if action == "pre_clear":
            pk_set = instance._audit_cleared = list(
                through.objects.filter(**{target: instance}).values_list(f"{source}_id", flat=True)
            )
        elif action == "post_clear":
            pk_set = getattr(instance, "_audit_cleared", [])
        if action.startswith("pre_"):
            for pk in pk_set:
                self._ensure_baseline(pk)
            return
        for obj in self.cls._default_manager.filter(pk__in=pk_set):
            super().m2m_changed(obj, action, attr, {instance.pk}, False, **kwargs)

    def get_change_reason_for_object(self, instance, history_type, using):
        reason = get_change_reason_from_object(instance)
        if reason:
            return reason
        acting = _acting.get()
        return acting.reason if acting is not None and acting.reason else None

    # --- secrets ----------------------------------------------------------------------------------

    def _note_secret_change(self, sender, instance, raw=False, **kwargs) -> None:
        instance._audit_secret_changed = False
        field = self.confidential_field  # connected only when there is one
        if raw or instance.pk is None or field is None:
            return
        stored = sender._default_manager.filter(pk=instance.pk).values_list(field, flat=True).first()
        instance._audit_secret_changed = stored is not None and stored != getattr(instance, field)

    def _flag_secret_change(self, sender, instance, history_instance, **kwargs) -> None:
        history_instance.secret_changed = getattr(instance, "_audit_secret_changed", False)


def track(model: type[models.Model], *, app_label: str, module: str, **options) -> None:
    """Track a model of another app (the users), its history table in ``app_label``.

    simple-history's ``register`` takes one name for both the app label and the models module;
    ``supportdesk.core`` has the label ``core``.
    """
    records = AuditedHistory(app=app_label, **options)
    records.manager_name = "history"
    records.table_name = None
    records.module = module
    records.cls = model
    records.add_extra_methods(model)
    records.finalize(model)
