"""Domain errors shared by every app, translated once: to 400/409 by the API exception handler,
to a form message by the views."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses (an illegal transition, a missing precondition): 400."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Conflict(DomainError):
    """Someone else changed the object first: 409, reload and try again."""

    status_code = 409
    code = "conflict"
