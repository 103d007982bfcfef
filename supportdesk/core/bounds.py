"""The span of dates and instants the product accepts from outside (API, forms, filters).

Arithmetic near the ends of Python's calendar (year 1, year 9999) overflows: a period ending on
9999-12-31 has no next day, an instant at 0001-01-01 +14:00 has no UTC reading. Nothing a support
team records lies outside 1970-2199, so every accepted date or instant is checked against that span
where it is parsed, and refused there with a message naming the field.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2199, 12, 31)
OUT_OF_RANGE = f"Give a date between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}."


def in_range(value: dt.date | dt.datetime) -> bool:
    """Whether ``value`` lies in the accepted span (an aware instant by its UTC date)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            try:
                value = value.astimezone(dt.UTC)
            except OverflowError:
                return False
        value = value.date()
    return EARLIEST <= value <= LATEST


def check(value):
    """``value`` if it is in range, else a DRF validation error (for ``validate_<field>``)."""
    if value is not None and not in_range(value):
        raise serializers.ValidationError(OUT_OF_RANGE)
    return value


class DateField(serializers.DateField):
    def to_internal_value(self, value):
        return check(super().to_internal_value(value))


class DateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value):
        try:
            parsed = super().to_internal_value(value)
        except OverflowError:
            raise serializers.ValidationError(OUT_OF_RANGE) from None
        return check(parsed)


class FormDateField(forms.DateField):
    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is not None and not in_range(parsed):
            raise DjangoValidationError(OUT_OF_RANGE, code="out_of_range")
        return parsed


class FormDateTimeField(forms.DateTimeField):
    def to_python(self, value):
        try:
            parsed = super().to_python(value)
        except OverflowError:
            raise DjangoValidationError(OUT_OF_RANGE, code="out_of_range") from None
        if parsed is not None and not in_range(parsed):
            raise DjangoValidationError(OUT_OF_RANGE, code="out_of_range")
        return parsed


class _IsoDateTimeFormField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        try:
            parsed = super().to_python(value)
        except OverflowError:
            raise DjangoValidationError(OUT_OF_RANGE, code="out_of_range") from None
        if parsed is not None and not in_range(parsed):
            raise DjangoValidationError(OUT_OF_RANGE, code="out_of_range")
        return parsed


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _IsoDateTimeFormField
