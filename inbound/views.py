"""The admins' mail pages: the mailboxes (list, create, edit, test the connection, poll now), the
received mail that needs attention (with retry), and the raw .eml download.

Reads and writes go through ``inbound.mailboxes``; its errors become a message or a form error on
the page (400), never a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cases.models import KEY_PREFIX
from cases.pagination import InvalidCursor, paginate
from supportdesk.core.decorators import role_required
from supportdesk.core.errors import DomainError

from . import mailboxes, webhooks
from .forms import MailboxForm, ReceivedMailFilter
from .models import POLLED_MODES, InboundMessage, InboundStatus, Mailbox, MailboxMode

admin_required = role_required(mailboxes.can_configure, "Mail configuration is for admins.")

RECEIVED_PAGE_SIZE = 50
RECEIVED_ORDERING = ["-received_at", "-id"]


# --- Mailboxes ---------------------------------------------------------------------------------


@admin_required
@require_safe
def mailbox_list(request: HttpRequest) -> HttpResponse:
    rows = list(mailboxes.mailbox_list(now=timezone.now()))
    return render(
        request,
        "inbound/mailboxes.html",
        {
            "mailboxes": rows,
            "polled_modes": {str(m) for m in POLLED_MODES},
            "imap": MailboxMode.IMAP,
            "refused_days": mailboxes.REFUSED_WINDOW.days,
        },
    )


def _provider_urls(request: HttpRequest) -> list[tuple[str, str]]:
    return [
        (
            view_class.esp_name + (" (raw MIME)" if "mime" in route else ""),
            request.build_absolute_uri(reverse(f"inbound:{webhooks.route_name(route)}")),
        )
        for route, view_class in webhooks.PROVIDER_VIEWS.items()
    ]


def _form_page(request: HttpRequest, form: MailboxForm, *, mailbox: Mailbox | None, status: int = 200):
    context = {"form": form, "mailbox": mailbox, "provider_urls": _provider_urls(request)}
    return render(request, "inbound/mailbox_form.html", context, status=status)


@admin_required
@require_http_methods(["GET", "HEAD", "POST"])
def mailbox_create(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _form_page(request, MailboxForm(), mailbox=None)
    form = MailboxForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, mailbox=None, status=400)
    mailbox = form.save()
    messages.success(request, f"Mailbox {mailbox.name} <{mailbox.address}> created.")
    return redirect("inbound:mailboxes")


@admin_required
@require_http_methods(["GET", "HEAD", "POST"])
def mailbox_edit(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = get_object_or_404(Mailbox, pk=pk)
    if request.method != "POST":
        return _form_page(request, MailboxForm(instance=mailbox), mailbox=mailbox)
    form = MailboxForm(request.POST, instance=mailbox)
    if not form.is_valid():
        return _form_page(request, form, mailbox=Mailbox.objects.get(pk=pk), status=400)
    mailbox = form.save()
    messages.success(request, f"Mailbox {mailbox.name} saved.")
    return redirect("inbound:mailboxes")


@admin_required
@require_POST
def mailbox_test(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = get_object_or_404(Mailbox, pk=pk)
    try:
        result = mailboxes.mailbox_test_connection(mailbox)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if result.ok:
            messages.success(request, f"{mailbox.name}: {result.detail}")
        else:
            messages.error(request, f"{mailbox.name}: the connection failed. {result.detail}")
    return redirect("inbound:mailboxes")


@admin_required
@require_POST
def mailbox_poll(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = get_object_or_404(Mailbox, pk=pk)
    try:
        mailboxes.mailbox_poll_now(mailbox)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"A poll of {mailbox.name} is queued; reload in a moment to see it.")
    return redirect("inbound:mailboxes")


# --- Received mail -----------------------------------------------------------------------------


def _case_key(record: InboundMessage) -> str:
    return f"{KEY_PREFIX}{record.case_id}" if record.case_id else ""


@admin_required
@require_safe
def received_mail(request: HttpRequest) -> HttpResponse:
    form = ReceivedMailFilter(request.GET or None)
    status, mailbox = "", None
    if form.is_bound and form.is_valid():
        status, mailbox = form.cleaned_data["status"], form.cleaned_data["mailbox"]
    elif form.is_bound:
        messages.warning(request, "Some filters were not understood and are ignored.")
    statuses = [status] if status else list(mailboxes.ATTENTION_STATUSES)
    rows = mailboxes.received_mail(statuses=statuses, mailbox=mailbox)
    cursor = request.GET.get("cursor") or None
    try:
        page = paginate(
            rows,
            ordering=RECEIVED_ORDERING,
            cursor=cursor,
            page_size=RECEIVED_PAGE_SIZE,
            datetime_fields={"received_at"},
        )
    except (InvalidCursor, ValueError, TypeError, OverflowError):
        messages.warning(request, "That page link is not valid; showing the first page.")
        page = paginate(
            rows,
            ordering=RECEIVED_ORDERING,
            cursor=None,
            page_size=RECEIVED_PAGE_SIZE,
            datetime_fields={"received_at"},
        )
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "inbound/received.html",
        {
            "filter_form": form,
            "page": page,
            "rows": [(record, _case_key(record)) for record in page.items],
            "query": query.urlencode(),
            "retryable": {str(s) for s in mailboxes.RETRYABLE_STATUSES},
            "status": status,
        },
    )


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("inbound:received")


@admin_required
@require_POST
def message_retry(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(InboundMessage.objects.select_related("mailbox"), pk=pk)
    try:
        record = mailboxes.inbound_retry(record, now=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(_back(request))
    if record.status == InboundStatus.INGESTED:
        messages.success(
            request,
            f"The mail from {record.from_address or 'an unknown sender'} is now on {_case_key(record)}.",
        )
    elif record.status == InboundStatus.FAILED:
        messages.error(request, f"The retry failed again: {record.reason}")
    else:
        messages.info(request, f"Processed: {record.get_status_display()}. {record.reason}".strip())
    return redirect(_back(request))


@login_required
@require_safe
def raw(request: HttpRequest, pk: int) -> FileResponse:
    """The mail as it was received, always as a download (never rendered by the browser)."""
    record = get_object_or_404(InboundMessage, pk=pk)
    if not mailboxes.can_download_raw(request.user, record):
        raise PermissionDenied(
            "Received mails are for admins, and for the support staff who may see its case."
        )
    if not record.raw:
        raise Http404("This mail's file is not stored.")
    try:
        handle = record.raw.open("rb")
    except FileNotFoundError as exc:
        raise Http404("This mail's file is no longer stored.") from exc
    name = f"{_case_key(record) or 'mail'}-{record.pk}.eml"
    response = FileResponse(handle, as_attachment=True, filename=name, content_type="message/rfc822")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
