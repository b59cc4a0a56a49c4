"""A folder as the mailer: each outgoing message becomes one `.eml` file (the embedded default).

The file is named after the outbox key, and written to a temporary name first and renamed, so a
message is in the folder whole or not at all, and sending it twice writes the same file again.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mapping.errors import TransientSendError
from mapping.outgoing_mail import OutboxMessage

__all__ = ["FolderMailer"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FolderMailer:
    def __init__(self, path: Path) -> None:
        self.path = path

    def file_for(self, message: OutboxMessage) -> Path:
        return self.path / f"{_UNSAFE.sub('_', message.key)}.eml"

    def send(self, message: OutboxMessage, *, envelope_from: str) -> str:
        target = self.file_for(message)
        temporary = target.with_suffix(".tmp")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(message.content)
            os.replace(temporary, target)
        except OSError as error:
            raise TransientSendError(
                f"cannot write {target}: {error}", recipient=", ".join(message.recipients)
            ) from error
        return f"written to {target}"

    def close(self) -> None:
        """Nothing to release."""
