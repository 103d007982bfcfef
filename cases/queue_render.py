"""The queue's rows as HTML, written in Python: the one hot loop of the busiest page.

The queue page is a Django template; its rows are not. Fifty rows of a dozen cells each cost the
template engine about a millisecond a row (variable lookups, an ``{% if %}`` chain per cell, an
include per pill), more than every query of the page together. Here each row is one f-string whose
every value passes through ``escape`` (or is markup built the same way), so the output is the same
markup at a fraction of the cost. The cells' markup is described in docs/workspace.md.

The other clocks of a case are not rendered here: the "next due" cell holds a ``<details>`` whose
body the page's script fetches from ``cases:queue_clocks`` when it is opened (without the script
it links to the case page, which shows every clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from supportdesk.core.instants import format_instant
from supportdesk.core.markup import escape_text as escape
from supportdesk.core.templatetags.supportdesk import when

from .models import Severity, Status, Tier
from .queue_views import QueueRow

_SEVERITY_TONE = {"P1": " bad", "P2": " warn"}
# The choices' labels, looked up once (``get_FOO_display`` rebuilds its mapping on every call).
_TIER_LABELS = dict(Tier.choices)
_SEVERITY_LABELS = dict(Severity.choices)
_STATUS_LABELS = dict(Status.choices)
_STATUS_TONE = {"resolved": " good", "closed": " good", "new": " warn", "reopened": " warn"}


def severity_pill(severity: str) -> str:
    """A case's severity as a pill (P1 in the "bad" tone, P2 "warn"), its name in the title."""
    return (
        f'<span class="pill sev sev-{escape(severity)}{_SEVERITY_TONE.get(severity, "")}" '
        f'title="{escape(_SEVERITY_LABELS.get(severity, severity))}">{escape(severity)}</span>'
    )


def status_pill(status: str) -> str:
    """A case's status as a pill, in words (resolved and closed "good", new and reopened "warn")."""
    return (
        f'<span class="pill status status-{escape(status)}{_STATUS_TONE.get(status, "")}">'
        f"{escape(_STATUS_LABELS.get(status, status))}</span>"
    )


def _case_url_template() -> str:
    """The case page URL with a placeholder, so a page reverses once, not twice a row."""
    return reverse("cases:detail", args=["CASE-0"]).replace("CASE-0", "{key}")


def _cell(name: str, row: QueueRow, page: dict[str, Any]) -> str:
    case = row.case
    if name == "organisation":
        org = case.organisation
        label = f"{escape(org.name)} · {escape(_TIER_LABELS.get(org.tier, org.tier))}"
        return (
            f'<td class="q-organisation" title="{label}">{escape(org.name)} '
            f'<span class="muted">· {escape(_TIER_LABELS.get(org.tier, org.tier))}</span></td>'
        )
    if name == "severity":
        unconfirmed = not case.severity_confirmed
        return (
            f'<td class="q-severity{" unconfirmed" if unconfirmed else ""}">{severity_pill(case.severity)}'
            + ('<span class="visually-hidden"> (not confirmed yet)</span>' if unconfirmed else "")
            + "</td>"
        )
    if name == "status":
        return f'<td class="q-status">{status_pill(case.status)}</td>'
    if name == "assignee":
        if case.assignee_id:
            person = escape(case.assignee.get_full_name() or case.assignee.username)
        else:
            person = '<span class="muted">Unassigned</span>'
        team = f' <span class="muted">· {escape(case.team.name)}</span>' if case.team_id else ""
        return f'<td class="q-assignee">{person}{team}</td>'
    if name == "due":
        return f'<td class="q-due due-{escape(row.due.state)}">{_due(row, page)}</td>'
    if name == "age":
        return (
            f'<td class="q-age nowrap"><time datetime="{case.created_at.isoformat()}" '
            f'title="Opened {escape(_plain(case.created_at, page["zone"]))}">{escape(row.age)}</time></td>'
        )
    if name == "updated":
        return (
            f'<td class="q-updated nowrap"><time datetime="{case.updated_at.isoformat()}" '
            f'title="{escape(_plain(case.updated_at, page["zone"]))}">{escape(row.updated)} ago</time></td>'
        )
    return ""


def _plain(value, zone) -> str:
    """The instant as text (for a title attribute), in the viewer's zone and the one format."""
    return format_instant(value, zone)


def _due(row: QueueRow, page: dict[str, Any]) -> str:
    due = row.due
    line = f'<span class="due-line"><strong class="due-state">{escape(due.state_label)}</strong>'
    if due.target:
        line += f' <span class="due-target">{escape(due.target_label)}</span>'
    if due.countdown:
        line += f' <span class="due-count">{escape(due.countdown)}</span>'
    if due.at:
        line += f' <span class="due-at">{when(due.at, zone=page["zone"])}</span>'
    line += "</span>"
    if not page["clocks"]:
        return line
    key = escape(row.case.key)
    return (
        f'<details class="due-more" data-clocks-url="{page["clocks"].format(key=key)}"><summary>{line}'
        '<span class="visually-hidden"> (show every clock)</span></summary>'
        f'<div class="due-clocks"><a href="{page["case"].format(key=key)}">Every clock on the case page</a>'
        "</div></details>"
    )


def render_rows(
    rows: Sequence[QueueRow], *, columns: Sequence[str], with_clocks: bool, badges: Sequence[Any] = ()
) -> SafeString:
    """The ``<tr>`` of every row, in order; ``badges`` (``extensions.queue_badges()``) lead the title."""
    case_url = _case_url_template()
    # The URL patterns, and the viewer's zone looked up once for the page's hundred instants.
    page = {
        "zone": timezone.get_current_timezone(),
        "case": case_url,
        "clocks": reverse("cases:queue_clocks", args=["CASE-0"]).replace("CASE-0", "{key}")
        if with_clocks
        else "",
    }
    out = []
    for row in rows:
        case = row.case
        key = escape(case.key)
        href = case_url.format(key=key)
        tags = "".join(f' <span class="q-tag">#{escape(tag)}</span>' for tag in row.tags)
        # Other apps' badges (safe HTML from their app) lead the title, so a long title never hides them.
        marks = "".join(badge.render(case) for badge in badges)
        cells = "".join(_cell(name, row, page) for name in columns)
        out.append(
            f'<tr class="q-row" data-key="{key}" data-due-state="{escape(row.due.state)}">'
            f'<td class="q-pick"><input type="checkbox" name="keys" value="{key}:{case.version}" '
            f'form="bulk-form" aria-label="Tick {key}"></td>'
            f'<td class="q-key nowrap"><a href="{href}">{key}</a></td>'
            f'<td class="q-title">{marks}<a href="{href}" title="{escape(case.title)}" tabindex="-1">'
            f"{escape(case.title)}</a>{tags}</td>{cells}</tr>"
        )
    return mark_safe("\n".join(out))  # noqa: S308 - every value above is escaped
