"""The TOML mapping: how a source's states, values and people become SupportDesk's.

The format is documented in ``imports/README.md``; ``mappings/servicenow.toml`` and
``mappings/xes-example.toml`` are complete examples. ``load_mapping`` validates everything it can
without the data (known statuses and severities, time zone, types) and raises ``MappingError``
with one message per problem.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cases.models import Severity, Status, Tier

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
DEFAULT_MAPPINGS = {
    "servicenow-csv": MAPPINGS_DIR / "servicenow.toml",
    "xes": MAPPINGS_DIR / "xes-example.toml",
}

#: A state mapped to this records the update but leaves the status as it was.
UNCHANGED = "unchanged"
#: ``[lifecycle] after_close``: what a source update that moves a closed case on becomes.
AFTER_CLOSE_REOPEN = "reopen"  # the close is withdrawn and the case reopened (the default)
AFTER_CLOSE_NEW_CASE = "new_case"  # a new case, linked to the closed one (as a customer's mail does)
AFTER_CLOSE = (AFTER_CLOSE_REOPEN, AFTER_CLOSE_NEW_CASE)
FORMATS = ("servicenow-csv", "xes")
_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
_DANGLING = " /:,;|–-"


class MappingError(ValueError):
    """The mapping cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Rule:
    """Which source updates count for something (first response, triage, replies).

    An update matches when its state is in ``states`` or its mapped status in ``statuses`` (either
    list may be empty, not both) and every field in ``require`` has a value.
    """

    states: frozenset[str]
    statuses: frozenset[str]
    require: tuple[str, ...]

    def matches(self, *, state_keys: tuple[str, ...], status: str, values: dict[str, str]) -> bool:
        if status not in self.statuses and self.states.isdisjoint(state_keys):
            return False
        return all(values.get(name) for name in self.require)


@dataclass(frozen=True)
class ValueMap:
    """A case attribute taken from a source field (or fixed), translated through ``values``."""

    field: str | None = None
    fixed: str | None = None
    values: dict[str, str] = dataclasses.field(default_factory=dict)
    default: str | None = None
    create_missing: bool = False

    def fields(self) -> list[str]:
        return [self.field] if self.field else []


@dataclass(frozen=True)
class Template:
    """``"{number}: {category}"``: source fields in braces; a missing field becomes empty."""

    text: str

    def __post_init__(self) -> None:
        # "{number}: {category}" -> "{0}: {1}" with the names aside: rendering is one str.format.
        parts = _TEMPLATE_FIELD.split(self.text)  # literal, name, literal, name, ..., literal
        names = parts[1::2]
        literals = [p.replace("{", "{{").replace("}", "}}") for p in parts[0::2]]
        pattern = literals[0] + "".join(f"{{{i}}}{literal}" for i, literal in enumerate(literals[1:]))
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_names", names)

    def fields(self) -> list[str]:
        return _TEMPLATE_FIELD.findall(self.text)

    def render(self, values: dict[str, str]) -> str:
        text = self._pattern.format(*[values.get(name, "") for name in self._names])  # type: ignore[attr-defined]
        # "INC1: / " when both fields are missing reads better as "INC1".
        return " ".join(text.split()).rstrip(_DANGLING)


@dataclass(frozen=True)
class Mapping:
    name: str
    format: str | None
    key: str
    state: str
    transition: str | None
    timestamp: str
    sequence: str | None
    actor: str | None
    creator: str | None
    created: str | None
    resolved: str | None
    closed: str | None
    missing: frozenset[str]
    date_format: str
    time_zone: str
    encoding: str
    key_prefix: str
    title: Template
    description: Template
    product_area: Template
    status: dict[str, str]
    severity: ValueMap
    organisation: ValueMap
    organisation_tier: str
    organisation_time_zone: str
    requester: ValueMap
    requester_email_domain: str
    team: ValueMap
    assignee: ValueMap
    people: dict[str, str]
    first_response: Rule | None
    triage: Rule | None
    replies: Rule | None
    after_close: str = AFTER_CLOSE_REOPEN
    text: str = ""

    def with_overrides(self, *, time_zone: str | None = None, date_format: str | None = None) -> Mapping:
        """The same mapping with the command's/page's ``--tz`` / ``--date-format`` applied."""
        problems: list[str] = []
        if time_zone:
            _check_zone(time_zone, "time zone", problems)
        if problems:
            raise MappingError(problems)
        return dataclasses.replace(
            self, time_zone=time_zone or self.time_zone, date_format=date_format or self.date_format
        )

    def update_fields(self) -> list[str]:
        """Every source field an update's values are read from (the digest covers these)."""
        names: list[str] = [self.state]
        optional = [self.transition, self.timestamp, self.sequence, self.actor, self.creator]
        optional += [self.created, self.resolved, self.closed]
        names += [n for n in optional if n]
        for value_map in (self.severity, self.organisation, self.requester, self.team, self.assignee):
            names += value_map.fields()
        for template in (self.title, self.description, self.product_area):
            names += template.fields()
        for rule in (self.first_response, self.triage, self.replies):
            if rule is not None:
                names += list(rule.require)
        return list(dict.fromkeys(names))

    def status_for(self, state_keys: tuple[str, ...]) -> str | None:
        for key in state_keys:
            if key in self.status:
                return self.status[key]
        return None

    @property
    def measures_triage(self) -> bool:
        return self.triage is not None or Status.TRIAGED in self.status.values()


def load_mapping(text: str, *, format: str | None = None, source: str = "mapping") -> Mapping:
    """Parse and validate a TOML mapping; ``format`` (if given) must match the mapping's."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([f"{source} is not valid TOML: {exc}"]) from exc
    problems: list[str] = []
    reader = _Reader(data, problems)
    mapping = reader.mapping(text)
    if format is not None and mapping.format not in (None, format):
        problems.append(f"This mapping is for {mapping.format!r} files, not {format!r}.")
    if problems:
        raise MappingError(problems)
    return mapping


def load_mapping_file(path: str | Path, *, format: str | None = None) -> Mapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError([f"Cannot read the mapping {path}: {exc.strerror or exc}"]) from exc
    return load_mapping(text, format=format, source=path.name)


def default_mapping_text(format: str) -> str:
    return DEFAULT_MAPPINGS[format].read_text(encoding="utf-8")


def _check_zone(value: str, what: str, problems: list[str]) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"{what}: “{value}” is not a known time zone (e.g. Europe/Berlin).")


class _Reader:
    """Reads sections with type checks, collecting every problem instead of stopping at the first."""

    KNOWN = {
        "source",
        "case",
        "status",
        "severity",
        "organisation",
        "requester",
        "team",
        "assignee",
        "people",
        "first_response",
        "triage",
        "replies",
        "lifecycle",
    }

    def __init__(self, data: dict[str, Any], problems: list[str]) -> None:
        self.data = data
        self.problems = problems
        for name in sorted(set(data) - self.KNOWN):
            problems.append(f"Unknown section [{name}] (known: {', '.join(sorted(self.KNOWN))}).")

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problems.append(f"[{name}] must be a table.")
            return {}
        return value

    def string(self, table: dict, section: str, key: str, default: str | None = None, *, required=False):
        value = table.get(key, default)
        if value is None:
            if required:
                self.problems.append(f'[{section}] needs {key} = "...".')
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.problems.append(f"[{section}] {key} must be a non-empty string.")
            return default
        return value

    def strings(self, table: dict, section: str, key: str) -> list[str]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"[{section}] {key} must be a list of strings.")
            return []
        return value

    def str_table(self, table: dict, section: str) -> dict[str, str]:
        out = {}
        for key, value in table.items():
            if not isinstance(value, str):
                self.problems.append(f"[{section}] “{key}” must map to a string.")
                continue
            out[key] = value
        return out

    def value_map(self, section: str, *, allowed: list[str] | None = None) -> ValueMap:
        table = self.table(section)
        values = table.get("values", {})
        if not isinstance(values, dict):
            self.problems.append(f"[{section}.values] must be a table.")
            values = {}
        values = self.str_table(values, f"{section}.values")
        default = self.string(table, section, "default")
        if allowed is not None:
            for source, target in values.items():
                if target not in allowed:
                    self.problems.append(
                        f"[{section}.values] “{source}” = “{target}”: use one of {', '.join(allowed)}."
                    )
            if default is not None and default not in allowed:
                self.problems.append(f"[{section}] default “{default}”: use one of {', '.join(allowed)}.")
        create = table.get("create_missing", False)
        if not isinstance(create, bool):
            self.problems.append(f"[{section}] create_missing must be true or false.")
            create = False
        return ValueMap(
            field=self.string(table, section, "field"),
            fixed=self.string(table, section, "name"),
            values=values,
            default=default,
            create_missing=create,
        )

    def rule(self, section: str) -> Rule | None:
        if section not in self.data:
            return None
        table = self.table(section)
        states = self.strings(table, section, "states")
        statuses = self.strings(table, section, "statuses")
        for status in statuses:
            if status not in Status.values:
                self.problems.append(
                    f"[{section}] statuses: “{status}” is not a status ({', '.join(Status.values)})."
                )
        if not states and not statuses:
            self.problems.append(f"[{section}] needs states = [...] or statuses = [...].")
        return Rule(
            states=frozenset(states),
            statuses=frozenset(statuses),
            require=tuple(self.strings(table, section, "require")),
        )

    def mapping(self, text: str) -> Mapping:
        src = self.table("source")
        fmt = self.string(src, "source", "format")
        if fmt is not None and fmt not in FORMATS:
            self.problems.append(f"[source] format must be one of {', '.join(FORMATS)}.")
        missing = self.strings(src, "source", "missing") if "missing" in src else ["?", ""]
        time_zone = self.string(src, "source", "time_zone", "UTC") or "UTC"
        _check_zone(time_zone, "[source] time_zone", self.problems)
        case = self.table("case")
        status = self.str_table(self.table("status"), "status")
        if not status:
            self.problems.append("[status] must map at least one source state to a status.")
        allowed_status = [*Status.values, UNCHANGED]
        for state, target in status.items():
            if target not in allowed_status:
                self.problems.append(
                    f"[status] “{state}” = “{target}”: use one of {', '.join(allowed_status)}."
                )
        org_table = self.table("organisation")
        tier = self.string(org_table, "organisation", "tier", Tier.STANDARD) or Tier.STANDARD
        if tier not in Tier.values:
            self.problems.append(f"[organisation] tier must be one of {', '.join(Tier.values)}.")
        org_zone = self.string(org_table, "organisation", "time_zone", "UTC") or "UTC"
        _check_zone(org_zone, "[organisation] time_zone", self.problems)
        organisation = self.value_map("organisation")
        if not organisation.fixed and not organisation.field and not organisation.default:
            self.problems.append('[organisation] needs name = "...", or field = "..." with a default.')
        requester = self.value_map("requester")
        domain = self.string(self.table("requester"), "requester", "email_domain", "imported.invalid")
        people = self.str_table(self.table("people"), "people")
        lifecycle = self.table("lifecycle")
        for name in sorted(set(lifecycle) - {"after_close"}):
            self.problems.append(f"[lifecycle] {name}: unknown key (known: after_close).")
        after_close = self.string(lifecycle, "lifecycle", "after_close", AFTER_CLOSE_REOPEN)
        if after_close not in AFTER_CLOSE:
            self.problems.append(f"[lifecycle] after_close must be one of {', '.join(AFTER_CLOSE)}.")
            after_close = AFTER_CLOSE_REOPEN
        return Mapping(
            name=self.string(src, "source", "name", "Imported") or "Imported",
            format=fmt,
            key=self.string(src, "source", "key", required=True) or "",
            state=self.string(src, "source", "state", required=True) or "",
            transition=self.string(src, "source", "transition"),
            timestamp=self.string(src, "source", "timestamp", required=True) or "",
            sequence=self.string(src, "source", "sequence"),
            actor=self.string(src, "source", "actor"),
            creator=self.string(src, "source", "creator"),
            created=self.string(src, "source", "created"),
            resolved=self.string(src, "source", "resolved"),
            closed=self.string(src, "source", "closed"),
            missing=frozenset(missing),
            date_format=self.string(src, "source", "date_format", "%d/%m/%Y %H:%M") or "%d/%m/%Y %H:%M",
            time_zone=time_zone,
            encoding=self.string(src, "source", "encoding", "utf-8-sig") or "utf-8-sig",
            key_prefix=self.string(src, "source", "key_prefix", "") or "",
            title=Template(self.string(case, "case", "title", "{" + str(src.get("key", "key")) + "}") or ""),
            description=Template(self.string(case, "case", "description", "") or ""),
            product_area=Template(self.string(case, "case", "product_area", "") or ""),
            status=status,
            severity=self.value_map("severity", allowed=list(Severity.values)),
            organisation=organisation,
            organisation_tier=tier,
            organisation_time_zone=org_zone,
            requester=requester,
            requester_email_domain=domain or "imported.invalid",
            team=self.value_map("team"),
            assignee=self.value_map("assignee"),
            people=people,
            first_response=self.rule("first_response"),
            triage=self.rule("triage"),
            replies=self.rule("replies"),
            after_close=after_close or AFTER_CLOSE_REOPEN,
            text=text,
        )
