"""The mailer interface: hands one rendered message to the wire (or to a folder).

`send` returns the server's answer on success, raises TransientSendError when trying again later
may work (4xx, connection trouble) and PermanentSendError when it will not (5xx).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mapping.outgoing_mail import OutboxMessage

__all__ = ["Mailer"]


@runtime_checkable
class Mailer(Protocol):
    def send(self, message: OutboxMessage, *, envelope_from: str) -> str:
        """Deliver one message to its recipients; returns what the server answered."""
        ...

    def close(self) -> None:
        """Release connections; safe to call twice."""
        ...
