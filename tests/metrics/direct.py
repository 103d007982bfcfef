"""The counted dashboard figures straight from the source: what the rollup's figures must equal
(tests/metrics/test_rollup.py, tests/imports/test_rollup.py)."""

from __future__ import annotations

from metrics import selectors as m

DURATIONS = ("first_response_time", "time_to_triage", "time_to_resolve", "time_to_final_resolution")
COUNTED = (
    "sla_compliance",
    "escalation_rate",
    "engineering_bounce_rate",
    "update_cadence_adherence",
    "csat",
    "reopen_rate",
    "knowledge_reuse",
    *DURATIONS,
)


def direct(start, end, tz, **filters) -> dict:
    """The counted figures of one period straight from the source (``filters``: team, tier, ...)."""
    period = {"start": start, "end": end, "tz": tz, **filters}
    return {
        "sla_compliance": m.sla_compliance(**period),
        "escalation_rate": m.escalation_rate(**period),
        "engineering_bounce_rate": m.engineering_bounce_rate(**period),
        "update_cadence_adherence": m.update_cadence_adherence(**period),
        "csat": m.csat.csat(**period),
        "reopen_rate": m.reopen_rate(**period),
        "knowledge_reuse": m.knowledge_reuse(**period),
        "first_response_time": m.first_response_time(**period),
        "time_to_triage": m.time_to_triage(**period),
        "time_to_resolve": m.time_to_resolve(**period),
        "time_to_final_resolution": m.time_to_final_resolution(**period),
    }
