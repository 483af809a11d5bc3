"""Secrets out of the server's log: a filter on every handler, whatever logger a line comes from.

The app never logs a key itself, but text it does not control can hold one: an exception's message, a
library's debug line, DeepSeek's 401 reply quoting the key's last characters ("****cdef").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from pydantic import SecretStr

_KEYLIKE = re.compile(r"sk-[A-Za-z0-9_-]{6,}|\*{3,}[A-Za-z0-9]{2,}|Bearer\s+[^\s\"']+", re.IGNORECASE)


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str | SecretStr | None]) -> None:
        super().__init__()
        values = (s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets)
        self.secrets = sorted({v for v in values if v and v.strip()}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return _KEYLIKE.sub("[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def install_redaction(secrets: Iterable[str | SecretStr | None]) -> RedactingFilter:
    """On the root logger's handlers (where uvicorn's and every library's lines end up)."""
    redacting = RedactingFilter(secrets)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING)
    for handler in root.handlers:
        handler.addFilter(redacting)
    return redacting
