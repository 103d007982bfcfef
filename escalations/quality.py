"""How complete an escalation package is: a score from 0 to 5 and what is missing.

Pure code: no ORM, no settings. The same function scores a saved package, a bound form and the
live preview the browser asks for while the agent types, so the three can never disagree.

The rubric: one point for each criterion met.

1. **reproduction** — the steps to reproduce are a numbered list of at least two steps (lines that
   start ``1.``, ``2)``, ...), and both the expected and the actual behaviour are described.
2. **evidence** — at least one request/correlation ID or a log excerpt, and when the problem was
   first seen (engineering searches its logs by ID and time).
3. **environment** — product version, region and tenant are all given.
4. **impact** — the number of users affected is given, and whether a workaround exists is answered
   (yes or no; "unknown" does not count).
5. **diagnosis** — the hypotheses already tested, with their results, and a severity rationale.

Revenue at risk, the component, attachments and the last-seen time are welcome but not scored:
they are often unknown, and a package should not lose points for an honest blank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_SCORE = 5

_NUMBERED_STEP = re.compile(r"^\s*\d{1,3}[.)]\s*\S", re.MULTILINE)
MIN_STEPS = 2

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True)
class Missing:
    criterion: str
    message: str


@dataclass(frozen=True)
class Assessment:
    score: int
    missing: list[Missing] = field(default_factory=list)
    max_score: int = MAX_SCORE

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "missing": [{"criterion": m.criterion, "message": m.message} for m in self.missing],
        }


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    return str(value).strip()


def _present(fields: Mapping[str, Any], name: str) -> bool:
    return bool(_text(fields, name))


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def _yes_no(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def numbered_steps(text: str) -> int:
    """How many lines of ``text`` are numbered steps (``1.``, ``2)``)."""
    return len(_NUMBERED_STEP.findall(text or ""))


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _reproduction(fields: Mapping[str, Any]) -> str | None:
    needs = []
    steps = _text(fields, "steps_to_reproduce")
    if not steps:
        needs.append(
            f"write the steps to reproduce as a numbered list (1., 2., …) of at least {MIN_STEPS} steps"
        )
    elif numbered_steps(steps) < MIN_STEPS:
        needs.append(f"number the steps to reproduce (1., 2., …), at least {MIN_STEPS} of them")
    if not _present(fields, "expected_behaviour"):
        needs.append("describe the expected behaviour")
    if not _present(fields, "actual_behaviour"):
        needs.append("describe the actual behaviour")
    return _join(needs) if needs else None


def _evidence(fields: Mapping[str, Any]) -> str | None:
    needs = []
    if not (_present(fields, "request_ids") or _present(fields, "log_excerpts")):
        needs.append("add at least one request/correlation ID or a log excerpt")
    if not _present(fields, "first_seen_at"):
        needs.append("say when it was first seen")
    return _join(needs) if needs else None


def _environment(fields: Mapping[str, Any]) -> str | None:
    labels = {"product_version": "product version", "region": "region", "tenant": "tenant"}
    absent = [label for name, label in labels.items() if not _present(fields, name)]
    return f"add the {_join(absent)}" if absent else None


def _impact(fields: Mapping[str, Any]) -> str | None:
    needs = []
    if _whole_number(fields.get("users_affected")) is None:
        needs.append("give the number of users affected")
    if _yes_no(fields.get("workaround_available")) is None:
        needs.append("say whether a workaround is available")
    return _join(needs) if needs else None


def _diagnosis(fields: Mapping[str, Any]) -> str | None:
    needs = []
    if not _present(fields, "hypotheses"):
        needs.append("record the hypotheses you tested and their results")
    if not _present(fields, "severity_rationale"):
        needs.append("explain the severity")
    return _join(needs) if needs else None


CRITERIA: tuple[tuple[str, str, Any], ...] = (
    ("reproduction", "Reproduction", _reproduction),
    ("evidence", "Evidence", _evidence),
    ("environment", "Environment", _environment),
    ("impact", "Customer impact", _impact),
    ("diagnosis", "Diagnosis", _diagnosis),
)


def assess(fields: Mapping[str, Any]) -> Assessment:
    """Score a package given as a mapping of field name -> value (model values or raw form strings)."""
    missing = []
    for code, label, check in CRITERIA:
        need = check(fields)
        if need is not None:
            missing.append(Missing(code, f"{label}: {need[0].upper()}{need[1:]}."))
    return Assessment(score=MAX_SCORE - len(missing), missing=missing)
