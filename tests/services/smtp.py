"""A real SMTP server (aiosmtpd) on a local port for the service tests: it keeps every mail it
accepted, and can be taken down and brought back on the same port."""

from __future__ import annotations

import email
import email.policy
import threading

from aiosmtpd.controller import Controller


class Inbox:
    """aiosmtpd handler: keeps every message the server accepted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def by_message_id(self, message_id: str):
        with self.lock:
            return next((m for _, m in self.received if m["Message-ID"] == message_id), None)


class SmtpServer:
    """A real SMTP server on a fixed local port that can be taken down and brought back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def env(self) -> dict[str, str]:
        """What a worker's environment needs to send its mail here (retries within a test)."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_TIMEOUT": "5",
            "MAIL_RETRY_BASE_SECONDS": "1",
        }


def delivery_state(client, case, body: str) -> str:
    """The delivery state the case page (read with Django's test ``client``) shows for the public
    reply with ``body``: queued, sending, retrying, sent or failed."""
    html = client.get(case.get_absolute_url()).content.decode()
    item = next(i for i in html.split('<li class="ev ev-') if body in i)
    return item.split('data-delivery="', 1)[1].split('"', 1)[0]
