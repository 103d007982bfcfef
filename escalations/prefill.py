"""Environment facts found in a case's text, to prefill the escalation package.

Customers and agents often write facts as "Label: value" lines ("Version: 4.2", "Environment:
production", "OS: Windows 11", "Request ID: req-8f2c91"). ``parse`` reads such lines from texts given
oldest first: a later text overrides an earlier value (the customer upgraded since), request IDs
are collected. Quoted lines ("> ...", an e-mail's quote of an earlier mail) are skipped.

Pure code: no ORM, no settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# "Label: value" or "Label = value", optionally as a list item; the label is a few words.
_LINE = re.compile(
    r"^\s*(?:[-*•]\s+)?(?P<label>[A-Za-z][A-Za-z0-9 ._/-]{0,30}?)\s*[:=]\s*(?P<value>\S.*?)\s*$"
)
_SEPARATORS = re.compile(r"[\s._/-]+")
_TRAILING = ".,;"

# normalised label -> the package field it fills
_SINGLE: dict[str, str] = {
    **dict.fromkeys(
        ["version", "product version", "app version", "application version", "release", "build"],
        "product_version",
    ),
    **dict.fromkeys(["region", "data center", "data centre", "datacenter", "datacentre"], "region"),
    **dict.fromkeys(["tenant", "tenant id", "tenant name", "workspace", "instance"], "tenant"),
}
_REQUEST_IDS = {"request id", "request ids", "correlation id", "trace id", "x request id", "req id"}
# Environment facts without a field of their own: kept as "Label: value" lines, in this order.
_ENVIRONMENT: dict[str, str] = {
    "environment": "Environment",
    "env": "Environment",
    "deployment": "Deployment",
    "os": "OS",
    "operating system": "OS",
    "browser": "Browser",
    "device": "Device",
    "platform": "Platform",
    "database": "Database",
}
_ENVIRONMENT_ORDER = list(dict.fromkeys(_ENVIRONMENT.values()))

# Longer than this is a sentence, not a value (the package fields are 100-200 characters).
MAX_VALUE = 100


@dataclass
class Prefill:
    product_version: str = ""
    region: str = ""
    tenant: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)

    def as_initial(self) -> dict[str, str]:
        """Package form values for what was found (fields with nothing found are left out)."""
        initial = {
            name: getattr(self, name)
            for name in ("product_version", "region", "tenant")
            if getattr(self, name)
        }
        if self.environment:
            labels = [label for label in _ENVIRONMENT_ORDER if label in self.environment]
            initial["environment"] = "\n".join(f"{label}: {self.environment[label]}" for label in labels)
        if self.request_ids:
            initial["request_ids"] = "\n".join(self.request_ids)
        return initial


def _label(text: str) -> str:
    return _SEPARATORS.sub(" ", text.strip().lower()).strip()


def _value(text: str) -> str:
    return text.strip().rstrip(_TRAILING).strip()


def parse(texts: Iterable[str]) -> Prefill:
    """The facts in ``texts`` (oldest first; later values win)."""
    found = Prefill()
    for text in texts:
        for line in (text or "").splitlines():
            if line.lstrip().startswith(">"):
                continue
            match = _LINE.match(line)
            if match is None:
                continue
            label, value = _label(match["label"]), _value(match["value"])
            if not value or len(value) > MAX_VALUE or value.startswith("//"):
                continue
            if label in _SINGLE:
                setattr(found, _SINGLE[label], value)
            elif label in _REQUEST_IDS:
                for request_id in re.split(r"[\s,;]+", value):
                    if request_id and request_id not in found.request_ids:
                        found.request_ids.append(request_id)
            elif label in _ENVIRONMENT:
                found.environment[_ENVIRONMENT[label]] = value
    return found
