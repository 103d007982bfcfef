"""Reading source files as a stream of source cases, each with its updates, in constant memory.

ServiceNow CSV: one row per update of an incident. Rows are grouped by incident number while
streaming, which needs the rows of an incident to be contiguous. A first, cheap pass counts the
rows (for the progress bar) and checks that the numbers never decrease; an export sorted by number
(ServiceNow's own order) is then read once more and grouped on the fly. Any other order is sorted
first by an external merge sort: runs of ``SORT_RUN_ROWS`` rows are sorted in memory and written to
temporary files (only the mapped columns, with the line number), then merged. Memory is bounded by
one run plus one case, whatever the file size.

XES (IEEE 1849): parsed with expat as a stream of elements (no tree is built); each ``<trace>`` is
handed on when it ends, so memory is bounded by the largest trace. ``<global>`` defaults apply to
events and traces lacking an attribute. Field names in the mapping name event attributes; a name
starting with ``trace:`` names an attribute of the trace (``source.key`` always does).
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import os
import pyexpat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO

from .mapping import Mapping

SORT_RUN_ROWS = 100_000
csv.field_size_limit(16 * 1024 * 1024)

OpenBinary = Callable[[], IO[bytes]]


class SourceError(ValueError):
    """The file as a whole cannot be read (wrong format, missing columns)."""


@dataclass(slots=True)
class SourceUpdate:
    where: str  # "line 12" or "trace 3 (CASE-1), event 5"
    position: int  # order in the file, for ties
    values: dict[str, str]  # the mapped fields that have a value (missing ones are absent)


@dataclass
class SourceCase:
    key: str
    where: str
    updates: list[SourceUpdate] = field(default_factory=list)


@dataclass(frozen=True)
class RowError:
    """A row that belongs to no case (no key): reported and skipped."""

    where: str
    message: str


SourceItem = SourceCase | RowError


# ================================================================================== ServiceNow CSV


class CsvSource:
    unit = "rows"

    def __init__(self, open_binary: OpenBinary, mapping: Mapping) -> None:
        self.open_binary = open_binary
        self.mapping = mapping
        self.fields = mapping.update_fields()
        self.total: int | None = None
        self.is_sorted: bool | None = None
        self.read = 0  # rows handed on so far (progress)

    def _text(self, stack: ExitStack) -> IO[str]:
        raw = stack.enter_context(self.open_binary())
        return stack.enter_context(io.TextIOWrapper(raw, encoding=self.mapping.encoding, newline=""))

    def _header(self, reader) -> tuple[int, list[int | None]]:
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise SourceError("The file is empty: no header row.") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SourceError(f"The file is not a readable CSV: {exc}") from exc
        index = {name: i for i, name in enumerate(header)}
        m = self.mapping
        template_only = set()
        for template in (m.title, m.description, m.product_area):
            template_only |= set(template.fields())
        strict_fields = [m.key] + [f for f in self.fields if f not in template_only or f in self._named()]
        absent = [name for name in strict_fields if name not in index]
        if absent:
            raise SourceError(
                f"The mapping names column(s) the file does not have: {', '.join(absent)} "
                f"(its columns: {', '.join(header[:40])}{' ...' if len(header) > 40 else ''})."
            )
        return index[m.key], [index.get(name) for name in self.fields]

    def _named(self) -> set[str]:
        m = self.mapping
        names = {m.state, m.timestamp}
        names |= {
            n for n in (m.transition, m.sequence, m.actor, m.creator, m.created, m.resolved, m.closed) if n
        }
        for value_map in (m.severity, m.organisation, m.requester, m.team, m.assignee):
            names |= set(value_map.fields())
        for rule in (m.first_response, m.triage, m.replies):
            if rule is not None:
                names |= set(rule.require)
        return names

    def scan(self) -> int:
        """Count the rows and find out whether they are sorted by key (one cheap pass)."""
        missing = self.mapping.missing
        with ExitStack() as stack:
            reader = csv.reader(self._text(stack))
            key_at, _ = self._header(reader)
            rows = 0
            previous = ""
            ordered = True
            try:
                for row in reader:
                    rows += 1
                    if ordered and key_at < len(row):
                        key = row[key_at].strip()
                        if key not in missing:
                            if key < previous:
                                ordered = False
                            previous = key
            except (csv.Error, UnicodeDecodeError) as exc:
                raise SourceError(f"The file is not a readable CSV near row {rows + 1}: {exc}") from exc
        self.total = rows
        self.is_sorted = ordered
        return rows

    def _rows(self, stack: ExitStack) -> Iterator[tuple[int, str, list[str]]]:
        """(line, key, values of self.fields) in file order."""
        reader = csv.reader(self._text(stack))
        key_at, positions = self._header(reader)
        line = reader.line_num + 1
        try:
            for row in reader:
                width = len(row)
                key = row[key_at].strip() if key_at < width else ""
                values = [row[p].strip() if p is not None and p < width else "" for p in positions]
                yield line, key, values
                line = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SourceError(f"The file is not a readable CSV at line {line}: {exc}") from exc

    def _sorted_rows(self, stack: ExitStack, on_sorting: Callable[[int], None] | None):
        """The rows ordered by (key, line), through sorted runs in temporary files."""
        runs: list[IO[str]] = []
        chunk: list[tuple[int, str, list[str]]] = []

        def spill() -> None:
            chunk.sort(key=lambda r: (r[1], r[0]))
            handle = stack.enter_context(
                tempfile.TemporaryFile("w+", encoding="utf-8", newline="", prefix="import-sort-")  # noqa: SIM115
            )
            writer = csv.writer(handle)
            for line, key, values in chunk:
                writer.writerow([line, key, *values])
            handle.seek(0)
            runs.append(handle)
            chunk.clear()

        for done, row in enumerate(self._rows(stack), start=1):
            chunk.append(row)
            if len(chunk) >= SORT_RUN_ROWS:
                spill()
                if on_sorting:
                    on_sorting(done)
        if chunk:
            spill()

        def read_run(handle: IO[str]):
            for line, key, *values in csv.reader(handle):
                yield int(line), key, values

        return heapq.merge(*(read_run(h) for h in runs), key=lambda r: (r[1], r[0]))

    def cases(self, *, on_sorting: Callable[[int], None] | None = None) -> Iterator[SourceItem]:
        if self.is_sorted is None:
            self.scan()
        missing = self.mapping.missing
        names = self.fields
        with ExitStack() as stack:
            rows = self._rows(stack) if self.is_sorted else self._sorted_rows(stack, on_sorting)
            current: SourceCase | None = None
            first_line = last_line = 0
            for line, key, values in rows:
                self.read += 1
                if key in missing:
                    yield RowError(f"line {line}", f"no {self.mapping.key}: the row belongs to no case")
                    continue
                if current is None or key != current.key:
                    if current is not None:
                        current.where = _lines(first_line, last_line)
                        yield current
                    current = SourceCase(key=key, where="")
                    first_line = line
                last_line = line
                # Only known values: a missing one ("?") is simply absent.
                known = {
                    name: value for name, value in zip(names, values, strict=True) if value not in missing
                }
                current.updates.append(SourceUpdate(f"line {line}", line, known))
            if current is not None:
                current.where = _lines(first_line, last_line)
                yield current


def _lines(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


# ================================================================================== XES


_ATTRIBUTE_TAGS = frozenset({"string", "date", "int", "float", "boolean", "id"})
_BLOCK = 1 << 16

# Bounds on what one XES file may make a worker do. A token (a comment, a run of text, one start
# tag with its attributes) longer than MAX_TOKEN_BYTES is refused: expat re-scans an unfinished
# token on every block fed to it, so an unbounded one costs quadratic time. A gzip file may not
# expand more than MAX_GZIP_RATIO times once past GZIP_RATIO_FROM bytes (a bomb is refused while
# it is still small), nor past MAX_UNCOMPRESSED_BYTES; a trace may not hold more than
# MAX_TRACE_EVENTS events (a trace is held in memory until it ends).
MAX_TOKEN_BYTES = 1 << 20
MAX_GZIP_RATIO = 100
GZIP_RATIO_FROM = 32 << 20
MAX_UNCOMPRESSED_BYTES = 64 << 30
MAX_TRACE_EVENTS = 200_000


class _XesReader:
    """XES through expat, without building a tree: finished traces, each as (the trace's own
    attributes, the attributes of each of its events), and the ``<global>`` defaults.

    Attributes are the simple ones (string, date, ...) that are direct children of a trace, an
    event or a global; nested ones and events outside a trace are skipped. No entity may be
    declared (so none is expanded or fetched) and no external DTD is read. The element handlers
    run for every element of the file, so they keep their state in closure variables.
    """

    def __init__(self, *, max_token: int = MAX_TOKEN_BYTES, max_events: int = MAX_TRACE_EVENTS) -> None:
        self.finished: list[tuple[dict[str, str], list[dict[str, str]]]] = []
        self.max_token = max_token
        self.fed = 0  # bytes given to the parser so far
        self.last_seen = 0  # byte offset of the latest element boundary expat reported
        self.event_defaults: dict[str, str] = {}
        self.trace_defaults: dict[str, str] = {}
        self.saw_log = False
        finished, event_defaults, trace_defaults = self.finished, self.event_defaults, self.trace_defaults
        attribute_tags = _ATTRIBUTE_TAGS
        opened: list[str] = []  # local names of the open elements
        names: dict[str, str] = {}  # "namespace}name" -> "name"
        trace: dict[str, str] | None = None
        events: list[dict[str, str]] = []
        event: dict[str, str] | None = None
        defaults: dict[str, str] | None = None  # the <global> being read

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal trace, events, event, defaults
            self.last_seen = parser.CurrentByteIndex
            local = names.get(name)
            if local is None:
                local = names[name] = name.rpartition("}")[2]
            parent = opened[-1] if opened else None
            opened.append(local)
            if local in attribute_tags:
                key = attrs.get("key")
                if key is not None:
                    if parent == "event":
                        if event is not None:
                            event[key] = attrs.get("value") or ""
                    elif parent == "trace":
                        if trace is not None:
                            trace[key] = attrs.get("value") or ""
                    elif parent == "global" and defaults is not None:
                        defaults[key] = attrs.get("value") or ""
            elif local == "event":
                if parent == "trace" and trace is not None:
                    if len(events) >= max_events:
                        raise SourceError(
                            f"A trace holds more than {max_events:,} events; an XES import reads one "
                            "trace at a time and refuses larger ones."
                        )
                    event = {}
                    events.append(event)
            elif local == "trace":
                trace, events, event = {}, [], None
            elif local == "global":
                defaults = event_defaults if attrs.get("scope", "event") == "event" else trace_defaults
            elif local == "log" and parent is None:
                self.saw_log = True

        def end(name: str) -> None:
            nonlocal trace, events, event, defaults
            self.last_seen = parser.CurrentByteIndex
            local = opened.pop()
            if local == "event":
                event = None
            elif local == "trace":
                if trace is not None:
                    finished.append((trace, events))
                trace, events, event = None, [], None
            elif local == "global":
                defaults = None

        def entity(*args) -> None:
            raise SourceError("The file declares XML entities, which an XES import does not accept.")

        parser = pyexpat.ParserCreate(namespace_separator="}")
        parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.EntityDeclHandler = entity
        parser.StartElementHandler = start
        parser.EndElementHandler = end
        self.parser = parser

    def feed(self, block: bytes, *, last: bool = False) -> None:
        self.parser.Parse(block, last)
        self.fed += len(block)
        if self.fed - max(self.last_seen, 0) > self.max_token:
            raise SourceError(
                f"The file holds a comment, a text or a tag longer than {self.max_token:,} bytes "
                f"(near byte {max(self.last_seen, 0):,}); an XES import refuses such tokens."
            )


class _BoundedGzip(io.RawIOBase):
    """A gzip stream that refuses to expand beyond the bounds above (checked on every read)."""

    def __init__(self, raw: IO[bytes], *, ratio: int, ratio_from: int, limit: int) -> None:
        self.raw = raw
        self.inflated = gzip.GzipFile(fileobj=raw, mode="rb")
        self.out = 0
        self.ratio, self.ratio_from, self.limit = ratio, ratio_from, limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inflated.read(size)
        self.out += len(data)
        if self.out > self.limit:
            raise SourceError(f"The file expands to more than {self.limit:,} bytes; it is refused.")
        if self.out > self.ratio_from and self.out > self.ratio * max(self.raw.tell(), 1):
            raise SourceError(
                f"The compressed file expands more than {self.ratio} times (a compression bomb?); "
                "it is refused."
            )
        return data

    def close(self) -> None:
        self.inflated.close()
        super().close()


def open_maybe_gzip(
    open_binary: OpenBinary,
    stack: ExitStack,
    *,
    ratio: int = MAX_GZIP_RATIO,
    ratio_from: int = GZIP_RATIO_FROM,
    limit: int = MAX_UNCOMPRESSED_BYTES,
) -> IO[bytes]:
    raw = stack.enter_context(open_binary())
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return stack.enter_context(_BoundedGzip(raw, ratio=ratio, ratio_from=ratio_from, limit=limit))
    return raw


class XesSource:
    unit = "events"

    def __init__(self, open_binary: OpenBinary, mapping: Mapping) -> None:
        self.open_binary = open_binary
        self.mapping = mapping
        self.fields = mapping.update_fields()
        key = mapping.key
        self.key = key[len("trace:") :] if key.startswith("trace:") else key
        self.from_trace = {name: name[len("trace:") :] for name in self.fields if name.startswith("trace:")}
        self.from_event = [name for name in self.fields if name not in self.from_trace]
        self.event_names = frozenset(self.from_event)
        self.total: int | None = None
        self.is_sorted = True
        self.read = 0

    def scan(self) -> int:
        """Count ``<event`` tags with a byte search (for the progress bar; no XML parsing)."""
        count = 0
        tail = b""
        with ExitStack() as stack:
            handle = open_maybe_gzip(self.open_binary, stack)
            try:
                while block := handle.read(1 << 20):
                    # The kept tail is shorter than the pattern, so no match is counted twice.
                    data = tail + block
                    count += data.count(b"<event")
                    tail = data[-5:]
            except (OSError, EOFError) as exc:
                raise SourceError(f"The file cannot be read: {exc}") from exc
        self.total = count
        return count

    def cases(self, *, on_sorting: Callable[[int], None] | None = None) -> Iterator[SourceItem]:
        reader = _XesReader()
        with ExitStack() as stack:
            handle = open_maybe_gzip(self.open_binary, stack)
            trace_no = 0
            try:
                while True:
                    block = handle.read(_BLOCK)
                    reader.feed(block, last=not block)
                    # Traces finished in this block: memory is bounded by a block's traces.
                    for own, events in reader.finished:
                        trace_no += 1
                        yield self._case(trace_no, own, events, reader.trace_defaults, reader.event_defaults)
                    reader.finished.clear()
                    if not block:
                        break
            except pyexpat.ExpatError as exc:
                raise SourceError(f"The file is not well-formed XML: {exc}") from exc
            except (OSError, EOFError) as exc:
                raise SourceError(f"The file cannot be read: {exc}") from exc
            if not reader.saw_log:
                raise SourceError("This is not an XES file: the root element is not <log>.")

    def _case(
        self,
        number: int,
        own: dict[str, str],
        events: list[dict[str, str]],
        trace_defaults: dict[str, str],
        event_defaults: dict[str, str],
    ) -> SourceItem:
        """The source case of a trace: one update per event, each with the mapped values it has
        (its own, else the ``<global>`` default) and the trace's."""
        missing = self.mapping.missing
        self.read += len(events)
        attrs = {**trace_defaults, **own} if trace_defaults else own
        key = attrs.get(self.key, "").strip()
        where = f"trace {number}" + (f" ({key})" if key else "")
        if not key or key in missing:
            return RowError(where, f"no {self.key}: the trace cannot be matched to a case")
        case = SourceCase(key=key, where=where)
        # What every event starts from: the defaults of the event fields and the trace's values.
        base = {}
        for name in self.from_event:
            value = event_defaults.get(name, "").strip()
            if value not in missing:
                base[name] = value
        for name, attr in self.from_trace.items():
            value = attrs.get(attr, "").strip()
            if value not in missing:
                base[name] = value
        wanted = self.event_names
        updates = case.updates
        for index, event in enumerate(events, start=1):
            values = base.copy()
            for name, value in event.items():
                if name in wanted:
                    value = value.strip()
                    if value in missing:  # the event says "no value": no default either
                        values.pop(name, None)
                    else:
                        values[name] = value
            updates.append(SourceUpdate(f"{where}, event {index}", index, values))
        return case


def make_source(format: str, open_binary: OpenBinary, mapping: Mapping) -> CsvSource | XesSource:
    if format == "servicenow-csv":
        return CsvSource(open_binary, mapping)
    if format == "xes":
        return XesSource(open_binary, mapping)
    raise SourceError(f"Unknown format {format!r}.")


def file_opener(path: str | os.PathLike) -> OpenBinary:
    return lambda: open(path, "rb")  # noqa: SIM115 - the caller closes it
