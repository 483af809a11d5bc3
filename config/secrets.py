"""Secrets out of text: the one rule that error messages, hints from DeepSeek and traces all go through."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from pydantic import SecretBytes, SecretStr

REDACTED = "[redacted]"
#: Shorter secrets are redacted only where a whole string equals them: as substrings they would eat ordinary
#: words ("root:Milvus" holds "Milvus").
MIN_SUBSTRING_SECRET = 8
# DeepSeek's 401 body echoes the key's last characters ("Your api key: ****cdef is invalid"); OpenAI-style APIs
# quote "API key provided: sk-ab***cdef". Only a masked key right after "api key" is taken: `**kwargs` and
# markdown `***bold***` stay as they are.
KEY_TAIL = re.compile(r"(?i)(api[ _-]?key\b[^*\n]{0,20}?)[A-Za-z0-9_-]*\*{2,}[A-Za-z0-9_-]*")
# In text from a provider (an error hint), anything shaped like a key goes too, configured or not.
KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_-]+|\*{2,}\S*|Bearer\s+\S+", re.IGNORECASE)

Secret = str | SecretStr | SecretBytes | None


def secret_text(secret: Secret) -> str:
    if secret is None:
        return ""
    if isinstance(secret, SecretStr):
        return secret.get_secret_value()
    if isinstance(secret, SecretBytes):
        return secret.get_secret_value().decode("utf-8", "replace")
    return str(secret)


def redactor(
    secrets: Iterable[Secret] = (), *, key_like: bool = False, min_substring: int = MIN_SUBSTRING_SECRET
) -> Callable[[str], str]:
    """`text -> text` without the given secrets (and, with `key_like`, without anything shaped like a key).
    `min_substring=1` takes even a short secret out of the middle of words: right for an error message that
    quotes a connection string, wrong for traced documents."""
    values = {secret_text(s).strip() for s in secrets}
    values.discard("")
    whole = frozenset(values)
    substrings = sorted((s for s in values if len(s) >= min_substring), key=len, reverse=True)

    def redact(text: str) -> str:
        if text in whole:
            return REDACTED
        for secret in substrings:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "**" in text:
            text = KEY_TAIL.sub(rf"\1{REDACTED}", text)
        return KEY_LIKE.sub(REDACTED, text) if key_like else text

    return redact
