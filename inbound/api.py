"""The REST API of mail configuration, for admins: ``/api/mailboxes/`` (create, read, change,
delete; test an IMAP connection; poll now) and ``/api/inbound-messages/`` (every received mail,
read-only, with a retry for failed ones).

Writes go through ``inbound.mailboxes``; its ValidationErrors and domain errors become 400/409 with
field messages. The IMAP password is write-only: no response ever carries it.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from cases.api import KeysetPagination, StrictPrimaryKeyRelatedField, TeamSlugField
from cases.models import KEY_PREFIX, Organisation
from supportdesk.core.schema import FieldErrorsField

from . import mailboxes
from .models import InboundMessage, InboundStatus, Mailbox, MailboxMode


class IsMailAdmin(BasePermission):
    message = "Only admins can configure mailboxes and see received mail."

    def has_permission(self, request, view) -> bool:
        return mailboxes.can_configure(request.user)


# --- Mailboxes ---------------------------------------------------------------------------------


# Annotated on each mailbox by mailboxes.mailbox_list (not fields of the model).
_COUNTS = ("failed_count", "refused_count")


class MailboxSerializer(serializers.ModelSerializer):
    team = TeamSlugField(required=False, allow_null=True, help_text="Slug of the team new cases go to.")
    default_organisation = StrictPrimaryKeyRelatedField(
        queryset=Organisation.objects.all(),
        required=False,
        allow_null=True,
        help_text="Id of the organisation for senders whose domain belongs to none.",
    )
    imap_password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=200,
        style={"input_type": "password"},
        help_text="Write-only. Leave it out to keep the stored password; an empty string removes it.",
    )
    imap_password_set = serializers.SerializerMethodField(help_text="Whether a password is stored.")
    failed_count = serializers.SerializerMethodField(help_text="Received mails that failed (to retry).")
    refused_count = serializers.SerializerMethodField(help_text="Mails refused in the last 7 days.")

    class Meta:
        model = Mailbox
        fields = [
            "id",
            "name",
            "address",
            "display_name",
            "team",
            "default_severity",
            "default_organisation",
            "mode",
            "is_active",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_username",
            "imap_password",
            "imap_password_set",
            "imap_folder",
            "processed_folder",
            "maildir_path",
            "last_polled_at",
            "last_poll_error",
            "failed_count",
            "refused_count",
        ]
        read_only_fields = ["id", "last_polled_at", "last_poll_error"]
        # Uniqueness (case-insensitive for addresses) is checked by inbound.mailboxes.
        extra_kwargs: dict[str, dict[str, Any]] = {"name": {"validators": []}, "address": {"validators": []}}

    def get_imap_password_set(self, mailbox: Mailbox) -> bool:
        return bool(mailbox.imap_password)

    def _counted(self, mailbox: Mailbox, name: str) -> int:
        """A count ``mailboxes.mailbox_list`` annotates (``failed_count``, ``refused_count``)."""
        if not hasattr(mailbox, name):  # a fresh save: count once
            counted = mailboxes.mailbox_with_counts(mailbox.pk, now=timezone.now())
            for each in _COUNTS:
                setattr(mailbox, each, getattr(counted, each))
        count: int = getattr(mailbox, name)
        return count

    def get_failed_count(self, mailbox: Mailbox) -> int:
        return self._counted(mailbox, "failed_count")

    def get_refused_count(self, mailbox: Mailbox) -> int:
        return self._counted(mailbox, "refused_count")

    def _candidate(self, attrs: dict) -> tuple[Mailbox, str | None]:
        """The mailbox as it would be saved, and the new password (None: keep the stored one)."""
        attrs = dict(attrs)
        password = attrs.pop("imap_password", None)
        mailbox = Mailbox() if self.instance is None else Mailbox.objects.get(pk=self.instance.pk)
        for name, value in attrs.items():
            setattr(mailbox, name, value)
        return mailbox, password

    def validate(self, attrs: dict) -> dict:
        mailbox, password = self._candidate(attrs)
        if password is not None:
            mailbox.imap_password = password
        mailboxes.normalise(mailbox)
        try:
            mailbox.full_clean(validate_unique=False, validate_constraints=False)
            mailboxes.validate_mailbox(mailbox)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs

    def create(self, validated_data: dict) -> Mailbox:
        mailbox, password = self._candidate(validated_data)
        return mailboxes.mailbox_save(mailbox, password=password)

    def update(self, instance: Mailbox, validated_data: dict) -> Mailbox:
        mailbox, password = self._candidate(validated_data)
        return mailboxes.mailbox_save(mailbox, password=password)


class ConnectionResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Whether the login succeeded.")
    detail = serializers.CharField(help_text="What the server said, or why it failed.")


class QueuedSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")
    code = serializers.CharField(required=False)


def _field_errors(name: str, fields: list[str]) -> type[serializers.Serializer]:
    attrs: dict = {
        "detail": serializers.CharField(required=False, help_text="A message about the request as a whole."),
        "code": serializers.CharField(required=False),
        "non_field_errors": serializers.ListField(child=serializers.CharField(), required=False),
        "__doc__": f"Validation errors for {name}: each field lists its messages.",
    }
    for field in fields:
        attrs[field] = FieldErrorsField(required=False)  # a list, or per item/sub-field
    return type(f"{name}ValidationErrorSerializer", (serializers.Serializer,), attrs)


MailboxError = _field_errors(
    "Mailbox", [f for f, v in MailboxSerializer().fields.items() if not v.read_only or f == "imap_password"]
)
MailboxActionError = _field_errors("MailboxAction", ["mode", "is_active"])
InboundListError = _field_errors("InboundMessageList", ["mailbox", "status", "via", "cursor", "page_size"])
RetryError = _field_errors("InboundRetry", ["status"])

AUTH_ERRORS = {
    401: OpenApiResponse(
        ErrorSerializer, description="Not authenticated (send a session cookie or a token)."
    ),
    403: OpenApiResponse(ErrorSerializer, description="Only admins may use this."),
}
NOT_FOUND = {404: OpenApiResponse(ErrorSerializer, description="No such object.")}


def _bad_request(serializer) -> dict:
    return {400: OpenApiResponse(serializer, description="Invalid input: messages per field.")}


@extend_schema_view(
    list=extend_schema(
        summary="List mailboxes", responses={200: MailboxSerializer(many=True), **AUTH_ERRORS}
    ),
    retrieve=extend_schema(
        summary="A mailbox", responses={200: MailboxSerializer, **AUTH_ERRORS, **NOT_FOUND}
    ),
    create=extend_schema(
        summary="Create a mailbox",
        description=(
            "IMAP mode needs `imap_host`, `imap_username` and `imap_password`; Maildir mode may leave "
            "`maildir_path` empty (a folder named after the mailbox under var/); pipe and provider "
            "modes need only the name and address."
        ),
        responses={201: MailboxSerializer, **_bad_request(MailboxError), **AUTH_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a mailbox",
        description="Fields left out keep their values, the IMAP password too.",
        responses={200: MailboxSerializer, **_bad_request(MailboxError), **AUTH_ERRORS, **NOT_FOUND},
    ),
    destroy=extend_schema(
        summary="Delete a mailbox that never received mail",
        responses={
            204: None,
            409: OpenApiResponse(ErrorSerializer, description="It received mail: make it inactive instead."),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    ),
)
class MailboxViewSet(viewsets.ModelViewSet):
    permission_classes = [IsMailAdmin]
    serializer_class = MailboxSerializer
    pagination_class = None
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return mailboxes.mailbox_list(now=timezone.now())

    def perform_destroy(self, instance: Mailbox) -> None:
        mailboxes.mailbox_delete(instance)

    @extend_schema(
        summary="Test the IMAP connection",
        description="Logs in to the server and out again; nothing is read or moved. "
        "`ok` says whether it worked, `detail` what the server answered.",
        request=None,
        responses={
            200: ConnectionResultSerializer,
            **_bad_request(MailboxActionError),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk: str | None = None):
        result = mailboxes.mailbox_test_connection(self.get_object())
        return Response(ConnectionResultSerializer(result).data)

    @extend_schema(
        summary="Poll now",
        description="Queues a poll of an active IMAP or Maildir mailbox (mail.poll_mailbox).",
        request=None,
        responses={
            202: QueuedSerializer,
            **_bad_request(MailboxActionError),
            503: OpenApiResponse(ErrorSerializer, description="The task queue cannot be reached."),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"], url_path="poll-now")
    def poll_now(self, request, pk: str | None = None):
        mailbox = self.get_object()
        mailboxes.mailbox_poll_now(mailbox)
        return Response({"detail": f"A poll of {mailbox.name} is queued."}, status=status.HTTP_202_ACCEPTED)


# --- Received mail -----------------------------------------------------------------------------


class InboundMessageFilter(django_filters.FilterSet):
    mailbox = django_filters.ModelChoiceFilter(queryset=Mailbox.objects.all(), help_text="Mailbox id.")
    status = django_filters.MultipleChoiceFilter(
        choices=InboundStatus.choices, help_text="One or more (repeat the parameter)."
    )
    via = django_filters.ChoiceFilter(
        choices=[
            (m, m) for m in (MailboxMode.IMAP, MailboxMode.MAILDIR, MailboxMode.PIPE, MailboxMode.PROVIDER)
        ]
    )

    class Meta:
        model = InboundMessage
        fields = ["mailbox", "status", "via"]


class InboundMessageSerializer(serializers.ModelSerializer):
    mailbox_name = serializers.CharField(source="mailbox.name", read_only=True)
    case = serializers.SerializerMethodField(help_text="The key of the case the mail is on, if any.")
    case_url = serializers.SerializerMethodField(help_text="The case's page.")
    raw_url = serializers.SerializerMethodField(help_text="The mail as received (.eml download).")

    class Meta:
        model = InboundMessage
        fields = [
            "id",
            "mailbox",
            "mailbox_name",
            "message_id",
            "via",
            "status",
            "reason",
            "size",
            "from_address",
            "subject",
            "in_reply_to",
            "received_at",
            "processed_at",
            "attempts",
            "case",
            "case_url",
            "event_id",
            "threaded_by",
            "raw_url",
        ]
        read_only_fields = fields

    def get_case(self, record: InboundMessage) -> str | None:
        return f"{KEY_PREFIX}{record.case_id}" if record.case_id else None

    def get_case_url(self, record: InboundMessage) -> str | None:
        if not record.case_id:
            return None
        return self._absolute(reverse("cases:detail", args=[f"{KEY_PREFIX}{record.case_id}"]))

    def get_raw_url(self, record: InboundMessage) -> str | None:
        return self._absolute(reverse("inbound:raw", args=[record.pk])) if record.raw else None

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class InboundPagination(KeysetPagination):
    pass


@extend_schema_view(
    list=extend_schema(
        summary="List received mail",
        description="Every mail received, newest first; filter by mailbox and status.",
        responses={200: InboundMessageSerializer(many=True), **_bad_request(InboundListError), **AUTH_ERRORS},
    ),
    retrieve=extend_schema(
        summary="A received mail", responses={200: InboundMessageSerializer, **AUTH_ERRORS, **NOT_FOUND}
    ),
)
class InboundMessageViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsMailAdmin]
    serializer_class = InboundMessageSerializer
    pagination_class = InboundPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = InboundMessageFilter

    def get_queryset(self):
        return InboundMessage.objects.select_related("mailbox")

    def get_keyset_ordering(self) -> list[str]:
        return ["-received_at", "-id"]

    @extend_schema(
        summary="Retry a failed mail",
        description="Processes the mail again; the answer shows the outcome (`status`, `reason`).",
        request=None,
        responses={200: InboundMessageSerializer, **_bad_request(RetryError), **AUTH_ERRORS, **NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def retry(self, request, pk: str | None = None):
        record = mailboxes.inbound_retry(self.get_object(), now=timezone.now())
        return Response(self.get_serializer(record).data)
