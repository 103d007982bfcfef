"""The metric catalogue: each dashboard figure written down once.

One ``Metric`` per figure: its key (the name in ``periods_metrics``, the API's summary, the CSV
exports and the drill-down's ``metric=``), its plain label, its unit, the instant that selects
its rows for a period, its definition, its row in DOMAIN.md's metrics table, and its drill-down
(the parts of a ratio, what one counted item is, which case timestamp the list shows).

The figures (``metrics.figures``), the dashboard (``metrics.views`` and
``templates/metrics/dashboard.html``), the API (``metrics.api``), the CSV exports
(``metrics.exports``) and the rollup's duration histograms (``metrics.rollup``) read these entries;
none of them spells a metric's label, definition or instant itself. ``docs/domain.md`` explains the
rules the definitions share. Plain data: no queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sla.models import Target

DURATION = "duration"  # calendar seconds: count, median, p90, mean, overall and per severity
RATIO = "ratio"  # numerator / denominator
CSAT = "csat"  # a mean rating with its count and distribution
COUNT = "count"  # cases per week (the volume chart)
SNAPSHOT = "snapshot"  # cases now (the backlog)


@dataclass(frozen=True)
class Part:
    """A part of a figure that the drill-down can list on its own (a ratio's numerator, ...)."""

    code: str
    label: str


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    kind: str
    #: What one value is: "seconds", "ratio", "rating" or "cases".
    unit: str
    #: The instant that puts a row in a period (``Model.field``; for a duration, the case field that
    #: ends it). None for a snapshot: the backlog is now.
    selected_by: str | None
    definition: str
    #: The metric's name in DOMAIN.md's metrics table (``/work/shared/design/DOMAIN.md``, "Metrics").
    domain: str
    abbreviation: str = ""
    #: Which cases or severities it covers when that is not all of them ("P1, P2").
    scope: str = ""
    #: What the headline shows of it ("median", "mean rating, 1-5").
    headline_shows: str = ""
    #: The drill-down's parts; a ratio's first part is its numerator.
    parts: tuple[Part, ...] = ()
    #: What a ratio's drill-down lists when no part is chosen (its denominator).
    whole: str = ""
    #: What one ``counted`` item of the drill-down is, where a case can hold several.
    counted: tuple[str, str] = ("case", "cases")
    #: The case timestamp the drill-down shows next to the creation, its label, and whether the
    #: difference of the two is the figure (a duration).
    shown: tuple[str, str, bool] = ("first_response_at", "First response", False)
    #: Which way is good: lower (True), higher (False), neither (None).
    lower_is_better: bool | None = True
    #: The SLA target whose minutes a duration table shows beside it.
    sla_target: str | None = None
    #: A duration's number in the rollup's histograms (stored in ``DurationBucket.figure``: never
    #: renumber).
    code: int | None = None
    #: A duration that leaves out the cases open now (a reopened case has no final resolution).
    closed_only: bool = False

    @property
    def field(self) -> str:
        """The field part of ``selected_by`` (for a duration: the case instant that ends it)."""
        if self.selected_by is None:
            raise ValueError(f"{self.key} is a snapshot: no instant selects it.")
        return self.selected_by.rsplit(".", 1)[-1]

    @property
    def numerator(self) -> str | None:
        """A ratio's numerator part (what the headline's first number lists)."""
        return self.parts[0].code if self.kind == RATIO and self.parts else None

    @property
    def part_codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.parts)

    def part_label(self, code: str) -> str:
        return next((p.label for p in self.parts if p.code == code), code)

    @property
    def titled(self) -> str:
        """The label with its abbreviation: "Time to first resolution (MTTR)"."""
        return f"{self.label} ({self.abbreviation})" if self.abbreviation else self.label

    @property
    def headline_label(self) -> str:
        """The label of its headline KPI: "Time to first resolution (MTTR, median)"."""
        notes = [n for n in (self.abbreviation, self.scope, self.headline_shows) if n]
        return f"{self.label} ({', '.join(notes)})" if notes else self.label


CLOCKS = ("clock", "clocks")
MET = Part("met", "met on time")
BREACHED = Part("breached", "breached (late or missed)")
RESOLVED = Part("resolved", "resolved")

FIRST_RESPONSE_TIME = Metric(
    key="first_response_time",
    label="First response time",
    kind=DURATION,
    unit="seconds",
    selected_by="Case.first_response_at",
    definition="First public staff reply - created, for cases first answered in the period.",
    domain="FRT (first response time)",
    headline_shows="median",
    shown=("first_response_at", "First response", True),
    sla_target=Target.FIRST_RESPONSE.value,
    code=0,
)
TIME_TO_TRIAGE = Metric(
    key="time_to_triage",
    label="Time to triage",
    kind=DURATION,
    unit="seconds",
    selected_by="Case.triaged_at",
    definition="First time the case reached triaged - created, for cases first triaged in the period.",
    domain="TTT (time to triage)",
    headline_shows="median",
    shown=("triaged_at", "Triaged", True),
    sla_target=Target.TRIAGE.value,
    code=1,
)
TIME_TO_RESOLVE = Metric(
    key="time_to_resolve",
    label="Time to first resolution",
    kind=DURATION,
    unit="seconds",
    selected_by="Case.first_resolved_at",
    definition="Time to first resolution (MTTR): first resolution - created, for cases first "
    "resolved in the period.",
    domain="MTTR (time to resolve)",
    abbreviation="MTTR",
    headline_shows="median",
    shown=("first_resolved_at", "First resolved", True),
    sla_target=Target.RESOLUTION.value,
    code=2,
)
TIME_TO_FINAL_RESOLUTION = Metric(
    key="time_to_final_resolution",
    label="Time to final resolution",
    kind=DURATION,
    unit="seconds",
    selected_by="Case.last_resolved_at",
    definition="Time to final resolution: last resolution - created, for cases whose last "
    "resolution is in the period and that are not open now.",
    domain="time to final resolution",
    headline_shows="median",
    shown=("last_resolved_at", "Last resolved", True),
    sla_target=Target.RESOLUTION.value,
    code=3,
    closed_only=True,
)
SLA_COMPLIANCE = Metric(
    key="sla_compliance",
    label="SLA compliance",
    kind=RATIO,
    unit="ratio",
    selected_by="SlaClock.completed_at",
    definition="Clocks met on time / clocks completed (met or breached) in the period, per target "
    "and severity. A clock met late is a breach; cancelled and live clocks are left out.",
    domain="SLA compliance",
    parts=(MET, BREACHED),
    whole="completed clocks",
    counted=CLOCKS,
    lower_is_better=False,
)
UPDATE_CADENCE_ADHERENCE = Metric(
    key="update_cadence_adherence",
    label="Update cadence adherence",
    kind=RATIO,
    unit="ratio",
    selected_by="SlaClock.completed_at",
    definition="Update-cadence clocks of P1 and P2 cases met on time / completed in the period.",
    domain="update cadence adherence",
    scope="P1, P2",
    parts=(MET, BREACHED),
    whole="completed clocks",
    counted=CLOCKS,
    lower_is_better=False,
)
REOPEN_RATE = Metric(
    key="reopen_rate",
    label="Reopen rate",
    kind=RATIO,
    unit="ratio",
    selected_by="CaseEvent.created_at",
    definition="Cases reopened in the period / cases resolved in the period (each case counted once).",
    domain="reopen rate",
    parts=(Part("reopened", "reopened"), RESOLVED),
    whole="resolved",
    shown=("last_resolved_at", "Last resolved", False),
)
ESCALATION_RATE = Metric(
    key="escalation_rate",
    label="Escalation rate",
    kind=RATIO,
    unit="ratio",
    selected_by="Case.created_at",
    definition="Cases created in the period that have been escalated (submitted to engineering) / "
    "cases created in the period (one cohort: at most 1).",
    domain="escalation rate",
    parts=(Part("escalated", "escalated"), Part("created", "created")),
    whole="created",
    lower_is_better=None,
)
ENGINEERING_BOUNCE_RATE = Metric(
    key="engineering_bounce_rate",
    label="Engineering bounce rate",
    kind=RATIO,
    unit="ratio",
    selected_by="Escalation.submitted_at",
    definition="Escalations first submitted in the period that went to needs_info at least once / "
    "those escalations.",
    domain="engineering bounce rate",
    parts=(Part("bounced", "sent back for more information"), Part("submitted", "submitted")),
    whole="submitted",
    counted=("escalation", "escalations"),
)
KNOWLEDGE_REUSE = Metric(
    key="knowledge_reuse",
    label="Knowledge reuse",
    kind=RATIO,
    unit="ratio",
    selected_by="CaseEvent.created_at",
    definition="Cases resolved in the period with a linked article (linked at any time) / cases "
    "resolved in the period.",
    domain="knowledge reuse",
    parts=(Part("linked", "with a linked article"), RESOLVED),
    whole="resolved",
    shown=("last_resolved_at", "Last resolved", False),
    lower_is_better=False,
)
CSAT_SCORE = Metric(
    key="csat",
    label="CSAT",
    kind=CSAT,
    unit="rating",
    selected_by="SurveyResponse.answered_at",
    definition="The mean rating (1-5) of the survey answers received in the period, with their "
    "count and distribution.",
    domain="CSAT",
    headline_shows="mean rating, 1-5",
    counted=("answer", "answers"),
    shown=("last_resolved_at", "Last resolved", False),
    lower_is_better=False,
)
BACKLOG = Metric(
    key="backlog",
    label="Backlog",
    kind=SNAPSHOT,
    unit="cases",
    selected_by=None,
    definition="Open cases now by age (0-1 d, 1-3 d, 3-7 d, 7-21 d, >21 d, by creation) and severity.",
    domain="backlog aging",
    shown=("updated_at", "Last update", False),
)
VOLUME_CREATED = Metric(
    key="volume_created",
    label="Cases created",
    kind=COUNT,
    unit="cases",
    selected_by="Case.created_at",
    definition="Cases created per local week.",
    domain="(volume: not in DOMAIN.md's table)",
)
VOLUME_RESOLVED = Metric(
    key="volume_resolved",
    label="Cases resolved",
    kind=COUNT,
    unit="cases",
    selected_by="Case.first_resolved_at",
    definition="Cases first resolved per local week.",
    domain="(volume: not in DOMAIN.md's table)",
    shown=("first_resolved_at", "First resolved", True),
)

#: Every metric, in the order of the drill-down's choices.
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        FIRST_RESPONSE_TIME,
        TIME_TO_TRIAGE,
        TIME_TO_RESOLVE,
        TIME_TO_FINAL_RESOLUTION,
        SLA_COMPLIANCE,
        UPDATE_CADENCE_ADHERENCE,
        REOPEN_RATE,
        ESCALATION_RATE,
        ENGINEERING_BOUNCE_RATE,
        KNOWLEDGE_REUSE,
        CSAT_SCORE,
        BACKLOG,
        VOLUME_CREATED,
        VOLUME_RESOLVED,
    )
}
#: The duration figures, in the order of the dashboard's tables.
DURATIONS: tuple[Metric, ...] = tuple(m for m in METRICS.values() if m.kind == DURATION)
#: The figures of a period's summary (``periods_metrics``), in the API's order.
SUMMARY: tuple[Metric, ...] = (
    FIRST_RESPONSE_TIME,
    TIME_TO_TRIAGE,
    TIME_TO_RESOLVE,
    TIME_TO_FINAL_RESOLUTION,
    SLA_COMPLIANCE,
    REOPEN_RATE,
    ESCALATION_RATE,
    ENGINEERING_BOUNCE_RATE,
    UPDATE_CADENCE_ADHERENCE,
    KNOWLEDGE_REUSE,
    CSAT_SCORE,
)
#: For a compliance figure of one target: the case timestamp that target's clock is about.
TARGET_SHOWN: dict[str, tuple[str, str]] = {
    Target.TRIAGE.value: ("triaged_at", "Triaged"),
    Target.RESOLUTION.value: ("first_resolved_at", "First resolved"),
}


def duration_by_code(code: int) -> Metric:
    return next(m for m in DURATIONS if m.code == code)


@dataclass(frozen=True)
class Kpi:
    """A headline figure: a metric of the summary, for compliance one SLA target's."""

    key: str
    metric: Metric
    target: str | None = None

    @property
    def label(self) -> str:
        if self.target:
            return f"{self.metric.label}: {Target(self.target).label.lower()}"
        return self.metric.headline_label

    @property
    def kind(self) -> str:
        return self.metric.kind

    @property
    def part(self) -> str | None:
        """A ratio's numerator part in the drill-down."""
        return self.metric.numerator

    @property
    def lower_is_better(self) -> bool | None:
        return self.metric.lower_is_better

    @property
    def unit(self) -> str:
        """The unit of the headline value (a duration's is its median)."""
        return f"{self.metric.unit} (median)" if self.kind == DURATION else self.metric.unit


def _kpi(metric: Metric) -> Kpi:
    return Kpi(metric.key, metric)


#: The headline KPIs: the dashboard's cards and the KPI CSV.
HEADLINE: tuple[Kpi, ...] = (
    *(_kpi(m) for m in DURATIONS),
    Kpi("sla_first_response", SLA_COMPLIANCE, Target.FIRST_RESPONSE.value),
    Kpi("sla_resolution", SLA_COMPLIANCE, Target.RESOLUTION.value),
    _kpi(UPDATE_CADENCE_ADHERENCE),
    _kpi(REOPEN_RATE),
    _kpi(ESCALATION_RATE),
    _kpi(ENGINEERING_BOUNCE_RATE),
    _kpi(KNOWLEDGE_REUSE),
    _kpi(CSAT_SCORE),
)
