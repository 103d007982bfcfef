"""Every write to an organisation or a contact: the rules checked once, the change recorded.

The admin, the API and the case form call these; none saves an ``Organisation`` or a ``Contact``
itself. Each change is one transaction. An organisation's changes go to the configuration audit
trail (``Organisation.history``, attributed to ``actor``), and a change of its tier, which moves
every figure of its cases between tiers, is announced with ``cases.signals.organisation_changed``
(the metrics rollup marks the days it had counted).

An organisation's business-hours calendar belongs to the SLA app (``sla.services.save_calendar``
assigns organisations to a calendar); ``cases`` imports none of the other apps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from supportdesk.core.audit import acting_as
from supportdesk.core.errors import DomainError
from supportdesk.core.models import validate_time_zone

from .models import Contact, Organisation, Tier
from .signals import organisation_changed

_UNSET: Any = object()
NAME_MAX_LENGTH = 200


def _attributed(actor: User | None) -> contextlib.AbstractContextManager[None]:
    """The audit trail names ``actor``; without one, whoever the request or the caller says."""
    return acting_as(actor) if actor is not None else contextlib.nullcontext()


# --- Organisations ----------------------------------------------------------------------------------


def check_organisation(
    *, name: str, tier: str, time_zone: str, organisation: Organisation | None = None
) -> None:
    """Raise DomainError (with the field) unless these are valid values for ``organisation`` (None: a
    new one): a name no other organisation has (in any case), a tier, a known time zone."""
    if not name.strip():
        raise DomainError("An organisation needs a name.", field="name")
    if len(name.strip()) > NAME_MAX_LENGTH:
        raise DomainError(f"Keep the name to {NAME_MAX_LENGTH} characters.", field="name")
    clash = Organisation.objects.filter(name__iexact=name.strip())
    if organisation is not None and organisation.pk is not None:
        clash = clash.exclude(pk=organisation.pk)
    if clash.exists():
        raise DomainError(f"There is already an organisation called “{name.strip()}”.", field="name")
    if tier not in Tier.values:
        raise DomainError(f"“{tier}” is not a tier; use one of {', '.join(Tier.values)}.", field="tier")
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        raise DomainError(
            f"“{time_zone}” is not a known time zone (e.g. Europe/Berlin).", field="time_zone"
        ) from exc


def create_organisation(
    *,
    name: str,
    actor: User | None,
    now: dt.datetime,
    tier: str = Tier.STANDARD,
    time_zone: str = "UTC",
) -> Organisation:
    """Add a customer organisation, or raise DomainError; recorded on the audit trail."""
    check_organisation(name=name, tier=tier, time_zone=time_zone)
    try:
        with transaction.atomic(), _attributed(actor):
            return Organisation.objects.create(name=name.strip(), tier=tier, time_zone=time_zone)
    except IntegrityError as exc:  # a concurrent twin won the race
        raise DomainError("There is already an organisation with this name.", field="name") from exc


def update_organisation(
    organisation: Organisation,
    *,
    actor: User | None,
    now: dt.datetime,
    name: str = _UNSET,
    tier: str = _UNSET,
    time_zone: str = _UNSET,
) -> Organisation:
    """Change the given fields (omitted ones stay), or raise DomainError. Recorded on the audit
    trail; a new tier is announced (``organisation_changed``) in the same transaction."""
    try:
        with transaction.atomic(), _attributed(actor):
            organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
            wanted = {
                "name": organisation.name if name is _UNSET else name.strip(),
                "tier": organisation.tier if tier is _UNSET else tier,
                "time_zone": organisation.time_zone if time_zone is _UNSET else time_zone,
            }
            check_organisation(**wanted, organisation=organisation)
            changes = {
                field: (getattr(organisation, field), value)
                for field, value in wanted.items()
                if getattr(organisation, field) != value
            }
            if not changes:
                return organisation
            for field, (_, value) in changes.items():
                setattr(organisation, field, value)
            organisation.save(update_fields=list(changes))
            organisation_changed.send(
                sender=Organisation, organisation=organisation, changes=changes, actor=actor, now=now
            )
    except IntegrityError as exc:
        raise DomainError("There is already an organisation with this name.", field="name") from exc
    return organisation


# --- Contacts ---------------------------------------------------------------------------------------


def check_contact(
    *, organisation: Organisation, name: str, email: str, contact: Contact | None = None
) -> None:
    """Raise DomainError (with the field) unless these are valid values for ``contact`` (None: a new
    one): a name, an e-mail address the organisation gives no other contact (in any case), and the
    same organisation as before (a contact never moves)."""
    if contact is not None and contact.pk is not None and contact.organisation_id != organisation.pk:
        raise DomainError("A contact cannot move to another organisation.", field="organisation")
    if not name.strip():
        raise DomainError("A contact needs a name.", field="name")
    if len(name.strip()) > NAME_MAX_LENGTH:
        raise DomainError(f"Keep the name to {NAME_MAX_LENGTH} characters.", field="name")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise DomainError("Give a valid e-mail address.", field="email") from exc
    clash = Contact.objects.filter(organisation=organisation, email__iexact=email)
    if contact is not None and contact.pk is not None:
        clash = clash.exclude(pk=contact.pk)
    if clash.exists():
        raise DomainError(f"{organisation.name} already has a contact with this address.", field="email")


def create_contact(*, organisation: Organisation, name: str, email: str, actor: User | None) -> Contact:
    """Add a person at ``organisation`` (a record, not a login), or raise DomainError."""
    email = email.strip()
    check_contact(organisation=organisation, name=name, email=email)
    try:
        with transaction.atomic(), _attributed(actor):
            return Contact.objects.create(organisation=organisation, name=name.strip(), email=email)
    except IntegrityError as exc:
        raise DomainError(
            "This organisation already has a contact with this address.", field="email"
        ) from exc


def update_contact(
    contact: Contact,
    *,
    actor: User | None,
    name: str = _UNSET,
    email: str = _UNSET,
    organisation: Organisation = _UNSET,
) -> Contact:
    """Rename a contact or change their address (omitted fields stay), or raise DomainError.
    ``organisation`` may be given only as the one they already belong to."""
    try:
        with transaction.atomic(), _attributed(actor):
            contact = Contact.objects.select_for_update().select_related("organisation").get(pk=contact.pk)
            wanted = {
                "name": contact.name if name is _UNSET else name.strip(),
                "email": contact.email if email is _UNSET else email.strip(),
            }
            check_contact(
                organisation=contact.organisation if organisation is _UNSET else organisation,
                contact=contact,
                **wanted,
            )
            changed = [field for field, value in wanted.items() if getattr(contact, field) != value]
            if changed:
                for field in changed:
                    setattr(contact, field, wanted[field])
                contact.save(update_fields=changed)
    except IntegrityError as exc:
        raise DomainError(
            "This organisation already has a contact with this address.", field="email"
        ) from exc
    return contact
