"""Case search: one search document per case, kept current in the writing transaction, and the query.

The document (``CaseSearchDocument``) holds what a case is found by:

* ``names_text``: key, organisation, requester and CC names and addresses, tags, product area, lower
  case: substring matches for partial words (``acm``, ``CASE-12``, ``carla@``), with a pg_trgm
  trigram GIN index on PostgreSQL;
* ``public_text``: title, description, the customer's mails and the public replies, what a customer
  may read; ``staff_text``: the internal notes, searched only for staff;
* on PostgreSQL ``public_vector`` (weighted: key and title A; organisation, contacts, tags, product
  area B; description C; the conversation D) and ``staff_vector``, with GIN indexes.

Every write that changes those words calls ``reindex(case_ids)`` inside its transaction (the case
services, the import's batch writer, renames of an organisation, contact or tag): on PostgreSQL one
``INSERT ... SELECT ... ON CONFLICT`` per batch of cases, computed from the tables themselves, so a
batch costs one statement whatever its size. ``rebuild`` (the ``rebuild_case_search`` command, the
migration's backfill) runs the same statement over id ranges.

``search(queryset, text, staff=...)`` narrows a case queryset (already filtered like the queue) to
the matches, best first. On PostgreSQL: ``websearch_to_tsquery`` against the vectors, or every
partial word found in ``names_text``; ranked with ``ts_rank`` (plus a bonus when every word is in the
names, and an exact key first); the highlighted snippet is ``ts_headline`` of the matched document,
evaluated only for the rows of the page. A query matching a large share of a big history (a common
word) ranks the ``SEARCH_LIMIT`` newest matching cases, which keeps every search cheap; filters or
more words reach older ones. On SQLite every word must occur in one of the texts (``LIKE``); title
hits rank first.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, overload

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.core.paginator import Paginator
from django.db import connection, models, transaction
from django.db.models import F, FloatField, Q, QuerySet, Value, When
from django.db.models.functions import Concat
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from .models import Case, CaseSearchDocument, Contact, Organisation, Tag

SEARCH_CONFIG = "english"
#: At most this many matching cases are ranked and paged (the newest matches).
SEARCH_LIMIT = 1000
#: The longest query accepted (the page and the API refuse longer ones).
MAX_QUERY_CHARS = 200
#: Each part of a document is cut here (a tsvector must stay below 1 MB; snippets stay quick).
MAX_TEXT_CHARS = 100_000
#: Partial words looked up in ``names_text``: at most this many, of at least 3 characters (shorter
#: ones have no trigram to use the index with).
MAX_PARTIAL_WORDS = 8
MIN_PARTIAL_CHARS = 3
#: Cases per reindex statement.
BATCH = 2000
_PYTHON_BATCH = 500  # SQLite: fewer bound parameters per statement

CONVERSATION_KINDS = ("public_reply", "customer_message")
NOTE_KIND = "internal_note"

#: Index names (created by cases/migrations/0009_case_search.py on PostgreSQL).
PUBLIC_VECTOR_INDEX = "case_search_public_gin"
STAFF_VECTOR_INDEX = "case_search_staff_gin"
NAMES_TRIGRAM_INDEX = "case_search_names_trgm"
INDEXES = {
    PUBLIC_VECTOR_INDEX: "USING gin (public_vector)",
    STAFF_VECTOR_INDEX: "USING gin (staff_vector)",
    NAMES_TRIGRAM_INDEX: "USING gin (names_text gin_trgm_ops)",
}

# Highlight markers that stored text does not use: ts_headline and the SQLite snippet put them
# around matches; the snippet is escaped first, then they become <mark>.
MARK_START = "\x02"
MARK_STOP = "\x03"
_MARKERS = re.compile(f"[{MARK_START}{MARK_STOP}]")
_EDGE_PUNCTUATION = "\"'()[]{}<>,;:!?.*`“”‘’"
_WEBSEARCH_WORDS = {"or", "and"}


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


# --- Keeping the documents --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Models:
    case: Any
    organisation: Any
    contact: Any
    tag: Any
    event: Any
    document: Any

    @classmethod
    def of(cls, apps=None) -> _Models:
        if apps is None:
            from django.apps import apps
        get = apps.get_model
        return cls(
            case=get("cases", "Case"),
            organisation=get("cases", "Organisation"),
            contact=get("cases", "Contact"),
            tag=get("cases", "Tag"),
            event=get("cases", "CaseEvent"),
            document=get("cases", "CaseSearchDocument"),
        )


def reindex(case_ids: Iterable[int], *, lock: bool = False, apps=None) -> int:
    """Rebuild the search documents of these cases from their rows (in the caller's transaction).

    The services call it while they hold the case's row lock; ``lock`` takes the locks first (for a
    rename that touches cases nobody else locked). Returns how many documents were written.
    """
    ids = sorted({int(i) for i in case_ids if i is not None})
    if not ids:
        return 0
    m = _Models.of(apps)
    size = BATCH if is_postgresql() else _PYTHON_BATCH
    written = 0
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        if lock:
            with transaction.atomic():
                locked = m.case.objects.select_for_update().filter(pk__in=chunk).order_by("pk")
                chunk = list(locked.values_list("pk", flat=True))
                written += _write(chunk, m)
        else:
            written += _write(chunk, m)
    return written


def rebuild(*, batch: int = 20_000, progress=None, apps=None) -> int:
    """(Re)build the document of every case, one transaction per ``batch`` of case ids; safe to run
    again (rows are replaced) and beside the application (each batch is short)."""
    m = _Models.of(apps)
    bounds = m.case.objects.aggregate(low=models.Min("pk"), high=models.Max("pk"))
    if bounds["low"] is None:
        return 0
    written = 0
    for low in range(bounds["low"], bounds["high"] + 1, batch):
        with transaction.atomic():
            if is_postgresql():
                span = {"low": low, "high": low + batch}
                written += _write_sql("c.id >= %(low)s AND c.id < %(high)s", span, m)
            else:
                ids = m.case.objects.filter(pk__gte=low, pk__lt=low + batch).values_list("pk", flat=True)
                written += reindex(list(ids), apps=apps)
        if progress is not None:
            progress(written, min(low + batch - 1, bounds["high"]))
    return written


def _write(ids: list[int], m: _Models) -> int:
    if not ids:
        return 0
    if is_postgresql():
        return _write_sql("c.id = ANY(%(ids)s)", {"ids": ids}, m)
    return _write_python(ids, m)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def document_sql(where: str, m: _Models | None = None) -> str:
    """The statement that writes the documents of the cases ``where`` selects (alias ``c``)."""
    m = m or _Models.of()
    tags, cc = m.case.tags.through, m.case.cc.through
    # Only table names (quoted) and the caller's fixed ``where`` are formatted in; values are bound.
    return f"""
INSERT INTO {_table(m.document)}
    (case_id, names_text, public_text, staff_text, public_vector, staff_vector, indexed_at)
SELECT d.id,
    lower(concat_ws(' ', d.head_key, d.names)),
    concat_ws(E'\\n', NULLIF(d.title, ''), NULLIF(d.description, ''), d.conversation),
    coalesce(d.notes, ''),
    setweight(to_tsvector(%(config)s::regconfig, concat_ws(' ', d.head_key, d.title)), 'A')
      || setweight(to_tsvector(%(config)s::regconfig, d.names), 'B')
      || setweight(to_tsvector(%(config)s::regconfig, d.description), 'C')
      || setweight(to_tsvector(%(config)s::regconfig, coalesce(d.conversation, '')), 'D'),
    to_tsvector(%(config)s::regconfig, coalesce(d.notes, '')),
    now()
FROM (
    SELECT c.id,
        'CASE-' || c.id AS head_key,
        c.title,
        left(c.description, %(max)s) AS description,
        concat_ws(' ', o.name, r.name, r.email, cc.names, tg.names, NULLIF(c.product_area, '')) AS names,
        left(ev.conversation, %(max)s) AS conversation,
        left(ev.notes, %(max)s) AS notes
    FROM {_table(m.case)} c
    JOIN {_table(m.organisation)} o ON o.id = c.organisation_id
    JOIN {_table(m.contact)} r ON r.id = c.requester_id
    LEFT JOIN LATERAL (
        SELECT string_agg(t.name, ' ' ORDER BY t.name) AS names
        FROM {_table(tags)} ct JOIN {_table(m.tag)} t ON t.id = ct.tag_id
        WHERE ct.case_id = c.id
    ) tg ON true
    LEFT JOIN LATERAL (
        SELECT string_agg(x.name || ' ' || x.email, ' ' ORDER BY x.id) AS names
        FROM {_table(cc)} k JOIN {_table(m.contact)} x ON x.id = k.contact_id
        WHERE k.case_id = c.id
    ) cc ON true
    LEFT JOIN LATERAL (
        SELECT
            string_agg(e.body, E'\\n' ORDER BY e.created_at, e.id)
                FILTER (WHERE e.kind = ANY(%(conversation)s)) AS conversation,
            string_agg(e.body, E'\\n' ORDER BY e.created_at, e.id)
                FILTER (WHERE e.kind = %(note)s) AS notes
        FROM {_table(m.event)} e
        WHERE e.case_id = c.id AND e.kind = ANY(%(kinds)s) AND e.body <> ''
    ) ev ON true
    WHERE {where}
) d
ON CONFLICT (case_id) DO UPDATE SET
    names_text = EXCLUDED.names_text,
    public_text = EXCLUDED.public_text,
    staff_text = EXCLUDED.staff_text,
    public_vector = EXCLUDED.public_vector,
    staff_vector = EXCLUDED.staff_vector,
    indexed_at = EXCLUDED.indexed_at
"""  # noqa: S608


def document_params(**extra: Any) -> dict[str, Any]:
    return {
        "config": SEARCH_CONFIG,
        "max": MAX_TEXT_CHARS,
        "conversation": list(CONVERSATION_KINDS),
        "note": NOTE_KIND,
        "kinds": [*CONVERSATION_KINDS, NOTE_KIND],
        **extra,
    }


def _write_sql(where: str, params: dict[str, Any], m: _Models) -> int:
    with connection.cursor() as cursor:
        cursor.execute(document_sql(where, m), document_params(**params))
        return cursor.rowcount


def _write_python(ids: list[int], m: _Models) -> int:
    """Any database: four reads and one upsert per batch."""
    rows = m.case.objects.filter(pk__in=ids).values_list(
        "pk",
        "title",
        "description",
        "product_area",
        "organisation__name",
        "requester__name",
        "requester__email",
    )
    tags: dict[int, list[str]] = defaultdict(list)
    for case_id, name in (
        m.case.tags.through.objects.filter(case_id__in=ids)
        .order_by("tag__name")
        .values_list("case_id", "tag__name")
    ):
        tags[case_id].append(name)
    ccs: dict[int, list[str]] = defaultdict(list)
    for case_id, name, email in (
        m.case.cc.through.objects.filter(case_id__in=ids)
        .order_by("contact_id")
        .values_list("case_id", "contact__name", "contact__email")
    ):
        ccs[case_id].append(f"{name} {email}")
    conversation: dict[int, list[str]] = defaultdict(list)
    notes: dict[int, list[str]] = defaultdict(list)
    for case_id, kind, body in (
        m.event.objects.filter(case_id__in=ids, kind__in=[*CONVERSATION_KINDS, NOTE_KIND])
        .exclude(body="")
        .order_by("case_id", "created_at", "id")
        .values_list("case_id", "kind", "body")
    ):
        (notes if kind == NOTE_KIND else conversation)[case_id].append(body)
    now = timezone.now()
    documents = []
    for pk, title, description, area, org, name, email in rows:
        names = " ".join(p for p in [org, name, email, *ccs[pk], *tags[pk], area] if p)
        talk = "\n".join(conversation[pk])[:MAX_TEXT_CHARS]
        public = "\n".join(p for p in (title, (description or "")[:MAX_TEXT_CHARS], talk) if p)
        documents.append(
            m.document(
                case_id=pk,
                names_text=f"CASE-{pk} {names}".lower(),
                public_text=public,
                staff_text="\n".join(notes[pk])[:MAX_TEXT_CHARS],
                indexed_at=now,
            )
        )
    m.document.objects.bulk_create(
        documents,
        update_conflicts=True,
        unique_fields=["case"],
        update_fields=["names_text", "public_text", "staff_text", "indexed_at"],
    )
    return len(documents)


# --- Renames: an organisation, contact or tag name is in the documents of its cases ----------------

_RENAMED_FIELDS = {"Organisation": ("name",), "Contact": ("name", "email"), "Tag": ("name",)}


def _remember_names(sender, instance, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    fields = _RENAMED_FIELDS[sender.__name__]
    instance._search_names = sender._default_manager.filter(pk=instance.pk).values_list(*fields).first()


def _reindex_renamed(sender, instance, created=False, raw=False, **kwargs) -> None:
    if raw or created:
        return
    before = getattr(instance, "_search_names", None)
    fields = _RENAMED_FIELDS[sender.__name__]
    if before is None or tuple(before) == tuple(getattr(instance, f) for f in fields):
        return
    if sender.__name__ == "Organisation":
        ids = set(Case.objects.filter(organisation_id=instance.pk).values_list("pk", flat=True))
    elif sender.__name__ == "Contact":
        ids = set(Case.objects.filter(requester_id=instance.pk).values_list("pk", flat=True))
        ids |= set(Case.cc.through.objects.filter(contact_id=instance.pk).values_list("case_id", flat=True))
    else:
        ids = set(Case.tags.through.objects.filter(tag_id=instance.pk).values_list("case_id", flat=True))
    reindex(ids, lock=True)
    instance._search_names = None


def connect_signals() -> None:
    """Renames of organisations, contacts and tags (the API, the admin) reindex their cases in the
    same transaction. Called from ``CasesConfig.ready()``."""
    for model in (Organisation, Contact, Tag):
        name = model.__name__.lower()
        pre_save.connect(_remember_names, sender=model, dispatch_uid=f"cases.search.before_{name}")
        post_save.connect(_reindex_renamed, sender=model, dispatch_uid=f"cases.search.after_{name}")


# --- Querying -------------------------------------------------------------------------------------


def clean_query(text: str | None) -> str:
    """The query as searched: surrounding space removed, runs of space made one."""
    return " ".join((text or "").split())[:MAX_QUERY_CHARS]


def query_words(text: str) -> list[str]:
    """The query's words, lower case, each once, without surrounding punctuation and without the
    websearch operators (``or``, a leading ``-`` marks a word the SQLite search leaves out)."""
    seen: dict[str, None] = {}
    for chunk in text.lower().split():
        word = chunk.strip(_EDGE_PUNCTUATION)
        if not word or word in _WEBSEARCH_WORDS or word.startswith("-"):
            continue
        seen.setdefault(word, None)
    return list(seen)


def _partial_words(text: str) -> list[str]:
    return [w for w in query_words(text) if len(w) >= MIN_PARTIAL_CHARS][:MAX_PARTIAL_WORDS]


def _key_pk(text: str) -> int | None:
    return Case.pk_from_key(text)


def _match(text: str, *, staff: bool, via: str = "search_document__") -> Q:
    """Documents that match ``text``; ``via`` is the path from the queried model to the document
    (a reverse one-to-one from cases: the join stays an inner join)."""
    if is_postgresql():
        query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
        match = Q(**{f"{via}public_vector": query})
        if staff:
            match |= Q(**{f"{via}staff_vector": query})
        partial = _partial_words(text)
        if partial:
            match |= _all_in_names(partial, via=via)
        return match
    words = query_words(text)
    if not words:
        return Q(pk__in=[])
    match = Q()
    for word in words:
        one = Q(**{f"{via}names_text__contains": word}) | Q(**{f"{via}public_text__icontains": word})
        if staff:
            one |= Q(**{f"{via}staff_text__icontains": word})
        match &= one
    return match


def _all_in_names(words: list[str], *, via: str) -> Q:
    names = Q()
    for word in words:
        # names_text is lower case: a plain LIKE, which the trigram index serves.
        names &= Q(**{f"{via}names_text__contains": word})
    return names


def _rank(text: str, *, staff: bool) -> Any:
    pk = _key_pk(text)
    exact: Any = Value(0.0)
    if pk is not None:
        exact = models.Case(When(pk=pk, then=Value(10.0)), default=Value(0.0), output_field=FloatField())
    if is_postgresql():
        query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
        rank: Any = SearchRank(F("search_document__public_vector"), query)
        if staff:
            rank = rank + SearchRank(F("search_document__staff_vector"), query)
        partial = _partial_words(text)
        if partial:
            # Every word in a name (organisation, contact, tag, key): as much as a title word. A LIKE
            # per row, not a trigram similarity, which costs more than the rest of the rank together.
            rank = rank + models.Case(
                When(_all_in_names(partial, via="search_document__"), then=Value(0.5)),
                default=Value(0.0),
                output_field=FloatField(),
            )
        return rank + exact
    hits: Any = Value(0.0)
    for word in query_words(text):
        hits = hits + models.Case(
            When(title__icontains=word, then=Value(1.0)), default=Value(0.0), output_field=FloatField()
        )
    return hits + exact


#: The newest cases searched first, as a multiple of SEARCH_LIMIT (see ``_matching_ids``).
FIRST_WINDOW = 10


def _matching_ids(queryset: QuerySet, text: str, *, staff: bool) -> list[int]:
    """The newest ``SEARCH_LIMIT + 1`` matches among ``queryset``'s cases, newest first.

    The indexes say which documents match but not in which order, so every match is read to find
    the newest: for a word in a sixtieth of a million cases, sixteen thousand table pages. So the
    newest ``FIRST_WINDOW * SEARCH_LIMIT`` cases are searched first. When they hold
    ``SEARCH_LIMIT + 1`` matches, those are the newest of all; when they hold fewer, the next try
    covers twice the span the matches found so far predict (at least twice the last one), and the
    last try covers every case. A rare word costs one index lookup more.
    """
    if not queryset.query.where and not queryset.query.distinct:
        # No filter: the documents alone say it (no join to the cases).
        matching = CaseSearchDocument.objects.filter(_match(text, staff=staff, via=""))
        id_field, window_field = "case_id", "case_id"
    else:
        matching = queryset.filter(_match(text, staff=staff))
        # The window bounds the documents' ids (the planner carries equalities across the join,
        # not ranges), so their index scans read only the window.
        id_field, window_field = "pk", "search_document__case_id"
    # Sorted by an expression, not the column: in index order PostgreSQL would test the match on
    # every row of the window, newest first, until enough matched (a vector test costs far more
    # than it estimates); this way it reads the window's matches from the indexes and sorts them.
    matching = matching.order_by((F(id_field) + Value(0)).desc())
    newest = CaseSearchDocument.objects.aggregate(newest=models.Max("case_id"))["newest"] or 0
    span = FIRST_WINDOW * SEARCH_LIMIT
    while True:
        low = newest - span if newest - span > 0 else None
        window = matching if low is None else matching.filter(**{f"{window_field}__gt": low})
        ids = list(window.values_list(id_field, flat=True)[: SEARCH_LIMIT + 1])
        if len(ids) > SEARCH_LIMIT or low is None:
            return ids
        span = max(2 * span, 2 * span * (SEARCH_LIMIT + 1) // max(len(ids), 1))


class InArray(models.Func):
    """``<expression> = ANY(%s)`` with the values as one array parameter (PostgreSQL): a thousand ids
    as a thousand placeholders cost more to bind and plan than the search itself."""

    output_field = models.BooleanField()

    def __init__(self, expression: Any, values: list[int]) -> None:
        super().__init__(F(expression) if isinstance(expression, str) else expression)
        self.values = list(values)

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"{sql} = ANY(%s)", [*params, self.values]


def _with_ids(queryset: QuerySet, ids: list[int]) -> QuerySet:
    """The rows of ``queryset`` with these ids (one array parameter on PostgreSQL)."""
    return queryset.filter(InArray("pk", ids)) if is_postgresql() else queryset.filter(pk__in=ids)


class RankedCases:
    """The cases of a search, best first: their order is known (one query over the matching ids
    and their documents, no other joins); a slice fetches only its cases, with the caller's joins
    and the snippets. Each case carries ``search_rank``. Pages through ``SearchPaginator``.

    A sequence as a paginator reads one (length, slices, ``count()`` as on a queryset), not a
    ``collections.abc.Sequence``, whose ``count(value)`` means something else."""

    def __init__(self, ranked: list[tuple[int, float]], rows: QuerySet, *, matched: int) -> None:
        self._ranked = ranked
        self._rows = rows
        self.search_matched = matched

    def __len__(self) -> int:
        return len(self._ranked)

    def count(self) -> int:
        return len(self._ranked)

    def _fetch(self, ranked: list[tuple[int, float]]) -> list[Case]:
        if not ranked:
            return []
        ids = [pk for pk, _ in ranked]
        found = _with_ids(self._rows, ids)
        by_id = {case.pk: case for case in found}
        cases = []
        for pk, rank in ranked:
            case = by_id.get(pk)
            if case is not None:
                case.search_rank = rank
                cases.append(case)
        return cases

    @overload
    def __getitem__(self, index: int) -> Case: ...
    @overload
    def __getitem__(self, index: slice) -> list[Case]: ...
    def __getitem__(self, index: int | slice) -> Case | list[Case]:
        if isinstance(index, slice):
            return self._fetch(self._ranked[index])
        return self._fetch([self._ranked[index]])[0]

    def __iter__(self) -> Iterator[Case]:
        return iter(self._fetch(self._ranked))


def search(queryset: QuerySet, text: str, *, staff: bool) -> QuerySet | RankedCases:
    """The cases of ``queryset`` that match ``text``, best first (then newest), each with
    ``search_rank`` and a raw highlighted ``search_snippet`` (see ``snippet_html``).

    ``queryset`` is a case queryset already narrowed by the queue's filters; open and closed cases
    alike. Internal notes are searched only when ``staff``. At most ``SEARCH_LIMIT + 1`` cases are
    returned: the newest matches (``SearchPaginator`` pages ``SEARCH_LIMIT`` and says when more
    matched). Runs two queries now (the matching ids, then their rank order, which reads only the
    cases and their documents); a slice of the result fetches its cases with the caller's joins
    and computes snippets for them only.
    """
    text = clean_query(text)
    if not text:
        return queryset.none()
    ids = _matching_ids(queryset, text, staff=staff)
    # The filters were applied above: the rank and the rows start afresh from the ids (no DISTINCT
    # a tag filter may have added), the ids as one array on one side of the join only (on both,
    # the planner multiplies the two selectivities and expects a handful of rows).
    base = queryset.model._default_manager.all()
    chosen = _with_ids(base, ids)
    ranked = list(
        chosen.annotate(search_rank=_rank(text, staff=staff))
        .order_by("-search_rank", "-pk")
        .values_list("pk", "search_rank")
    )
    rows = base.all()
    rows.query.select_related = queryset.query.select_related
    # The caller's prefetches carried over (a private QuerySet attribute the stubs do not declare).
    rows._prefetch_related_lookups = queryset._prefetch_related_lookups  # type: ignore[attr-defined]
    annotations: dict[str, Any] = {}
    if is_postgresql():
        document: Any = F("search_document__public_text")
        if staff:
            document = Concat(
                "search_document__public_text",
                Value("\n"),
                "search_document__staff_text",
                output_field=models.TextField(),
            )
        annotations["search_snippet"] = SearchHeadline(
            document,
            SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG),
            config=SEARCH_CONFIG,
            start_sel=MARK_START,
            stop_sel=MARK_STOP,
            max_words=30,
            min_words=12,
            max_fragments=2,
            fragment_delimiter=" … ",
        )
    else:
        annotations["search_public_text"] = F("search_document__public_text")
        if staff:
            annotations["search_staff_text"] = F("search_document__staff_text")
    return RankedCases(ranked, rows.annotate(**annotations), matched=len(ids))


class SearchPaginator(Paginator):
    """Pages of a ``search`` result: ``count`` stops at ``SEARCH_LIMIT`` (``count_capped`` says more
    cases matched than are ranked)."""

    @cached_property
    def _counted(self) -> int:
        known = getattr(self.object_list, "search_matched", None)
        if known is not None:
            return known
        rows = self.object_list
        assert isinstance(rows, QuerySet)  # not a search (RankedCases): the queryset as it was
        return rows.order_by().values("pk").count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, SEARCH_LIMIT)

    @property
    def count_capped(self) -> bool:
        return self._counted > SEARCH_LIMIT


# --- Snippets -------------------------------------------------------------------------------------

SNIPPET_CHARS = 220


def markers_to_html(text: str) -> SafeString:
    """Escape ``text`` (all of it) and turn balanced highlight markers into ``<mark>`` elements."""
    out = []
    open_mark = False
    for part in re.split(f"({MARK_START}|{MARK_STOP})", text or ""):
        if part == MARK_START:
            if not open_mark:
                out.append("<mark>")
                open_mark = True
        elif part == MARK_STOP:
            if open_mark:
                out.append("</mark>")
                open_mark = False
        else:
            out.append(html.escape(part, quote=True))
    if open_mark:
        out.append("</mark>")
    return mark_safe("".join(out))  # noqa: S308 - every piece of text is escaped just above


def _mark_words(text: str, words: list[str]) -> str:
    text = _MARKERS.sub("", text)
    if not words:
        return text
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
    return pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_STOP}", text)


def _excerpt(text: str, words: list[str]) -> str:
    flat = " ".join(text.split())
    lowered = flat.lower()
    positions = [p for p in (lowered.find(w) for w in words) if p >= 0]
    start = max(0, min(positions) - SNIPPET_CHARS // 3) if positions else 0
    if start > 0:  # begin with a whole word
        space = flat.find(" ", start, min(positions))
        start = space + 1 if space >= 0 else min(positions)
    piece = flat[start : start + SNIPPET_CHARS]
    prefix = "… " if start > 0 else ""
    suffix = " …" if start + SNIPPET_CHARS < len(flat) else ""
    return prefix + _mark_words(piece, words) + suffix


def snippet_text(case, text: str) -> str:
    """A short excerpt of what matched in ``case`` (a row of ``search``), raw: the matches between
    ``MARK_START`` and ``MARK_STOP``."""
    raw = getattr(case, "search_snippet", None)
    if raw is not None:
        return " ".join(raw.split())
    words = query_words(clean_query(text))
    public = getattr(case, "search_public_text", "") or ""
    staff = getattr(case, "search_staff_text", "") or ""
    lowered = public.lower()
    source = public
    if staff and words and not any(w in lowered for w in words):
        source = staff
    return _excerpt(source, words)


def snippet_html(case, text: str) -> SafeString:
    """The snippet of ``case``, escaped, the matches in <mark>."""
    return markers_to_html(snippet_text(case, text))


def markers_to_plain(text: str) -> str:
    return _MARKERS.sub("", text or "")


def title_html(title: str, text: str) -> SafeString:
    """The title, escaped, with the query's words in <mark>."""
    return markers_to_html(_mark_words(title, [w for w in query_words(clean_query(text)) if len(w) > 1]))
