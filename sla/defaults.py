"""The SLA policies and calendar a fresh installation starts with (managers edit them afterwards).

Targets in minutes; "bh" = business hours of the organisation's calendar, "24x7" = round the clock.
Enterprise first response, triage and update cadence follow DOMAIN.md (FRT P1 15 min, P2 1 h,
P3 4 business h; triage P1 30 min, P2 2 h; cadence P1 30 min, P2 2 h); the rest is scaled from them.

=========== ===== ======== =========== ============ ============== ===========
tier        sev.  counts   first resp. triage       update cadence resolution
=========== ===== ======== =========== ============ ============== ===========
enterprise  P1    24x7     15 min      30 min       30 min         8 h
enterprise  P2    24x7     1 h         2 h          2 h            24 h
enterprise  P3    bh       4 h         8 h          8 h            24 h (3 d)
enterprise  P4    bh       8 h         16 h         —              40 h (5 d)
business    P1    24x7     30 min      1 h          1 h            16 h
business    P2    bh       2 h         4 h          4 h            24 h (3 d)
business    P3    bh       8 h         16 h         16 h           40 h (5 d)
business    P4    bh       16 h        24 h         —              80 h (10 d)
standard    P1    bh       1 h         2 h          2 h            24 h (3 d)
standard    P2    bh       4 h         8 h          8 h            40 h (5 d)
standard    P3    bh       16 h        24 h         24 h           80 h (10 d)
standard    P4    bh       24 h        40 h         —              160 h (20 d)
=========== ===== ======== =========== ============ ============== ===========

Business days are 8 business hours (the default calendar: Monday to Friday 09:00-17:00 UTC).
A P4 (question or request) has no update cadence. Every policy warns at 75 % of a target.
"""

from __future__ import annotations

from datetime import time

H = 60  # minutes per hour

# (tier, severity): (business_time, first_response, triage, update_cadence, resolution)
DEFAULT_POLICIES: dict[tuple[str, str], tuple[bool, int | None, int | None, int | None, int | None]] = {
    ("enterprise", "P1"): (False, 15, 30, 30, 8 * H),
    ("enterprise", "P2"): (False, 1 * H, 2 * H, 2 * H, 24 * H),
    ("enterprise", "P3"): (True, 4 * H, 8 * H, 8 * H, 24 * H),
    ("enterprise", "P4"): (True, 8 * H, 16 * H, None, 40 * H),
    ("business", "P1"): (False, 30, 1 * H, 1 * H, 16 * H),
    ("business", "P2"): (True, 2 * H, 4 * H, 4 * H, 24 * H),
    ("business", "P3"): (True, 8 * H, 16 * H, 16 * H, 40 * H),
    ("business", "P4"): (True, 16 * H, 24 * H, None, 80 * H),
    ("standard", "P1"): (True, 1 * H, 2 * H, 2 * H, 24 * H),
    ("standard", "P2"): (True, 4 * H, 8 * H, 8 * H, 40 * H),
    ("standard", "P3"): (True, 16 * H, 24 * H, 24 * H, 80 * H),
    ("standard", "P4"): (True, 24 * H, 40 * H, None, 160 * H),
}
DEFAULT_WARNING_RATIO = 0.75

DEFAULT_CALENDAR_NAME = "Standard business hours"
DEFAULT_CALENDAR_TZ = "UTC"
DEFAULT_OPENING_HOURS = [(weekday, time(9), time(17)) for weekday in range(5)]


def seed(*, calendar_model, opening_hours_model, policy_model) -> None:
    """Create the default calendar and the policies that are missing; never overwrites edits.

    Takes the model classes so the data migration can pass its historical models.
    """
    if not calendar_model.objects.filter(is_default=True).exists():
        calendar, created = calendar_model.objects.get_or_create(
            name=DEFAULT_CALENDAR_NAME, defaults={"time_zone": DEFAULT_CALENDAR_TZ, "is_default": True}
        )
        if not created:
            calendar.is_default = True
            calendar.save(update_fields=["is_default"])
        if created:
            opening_hours_model.objects.bulk_create(
                opening_hours_model(calendar=calendar, weekday=weekday, start=start, end=end)
                for weekday, start, end in DEFAULT_OPENING_HOURS
            )
    for (tier, severity), (business, first_response, triage, cadence, resolution) in DEFAULT_POLICIES.items():
        policy_model.objects.get_or_create(
            tier=tier,
            severity=severity,
            defaults={
                "business_time": business,
                "warning_ratio": DEFAULT_WARNING_RATIO,
                "first_response_minutes": first_response,
                "triage_minutes": triage,
                "update_cadence_minutes": cadence,
                "resolution_minutes": resolution,
            },
        )
