"""The little markdown the loader and the splitter need to agree on: fenced code and ATX headings.

A `#` line inside a ``` or ~~~ fence is code, not a heading; both modules use this one scanner so that
what the loader treats as code (left verbatim) is what the splitter keeps whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# Fences are recognised at any indentation: the docs nest them in list items (4 or 8 spaces).
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?[ \t]*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_HTML_TAG = re.compile(r"<[^<>]*>")
_WORDLIKE = re.compile(r"\w")


@dataclass(frozen=True)
class Fence:
    """One fenced code block, kept as its original lines; `close` is None when the file ends inside it."""

    open: str
    body: tuple[str, ...]
    close: str | None

    @property
    def closing(self) -> str:
        """The closing line to use when the block is re-fenced (synthesised if the file never closed it)."""
        if self.close is not None:
            return self.close
        m = _FENCE_OPEN.match(self.open)
        assert m is not None
        return m["indent"] + m["fence"]

    def text(self) -> str:
        return "\n".join((self.open, *self.body, self.closing))


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


def fence_opening(line: str) -> str | None:
    """The fence marker (``` or ~~~, with its length) when `line` opens a fenced code block."""
    m = _FENCE_OPEN.match(line)
    if m is None or (m["fence"][0] == "`" and "`" in m["info"]):
        return None
    return m["fence"]


def closes_fence(line: str, fence: str) -> bool:
    s = line.strip()
    return len(s) >= len(fence) and s == fence[0] * len(s)


def heading(line: str) -> Heading | None:
    """An ATX heading (`# ` … `###### `, up to three spaces of indentation), outside code."""
    if "#" not in line[:4]:
        return None
    m = _HEADING.match(line)
    if m is None:
        return None
    text = _CLOSING_HASHES.sub("", m["text"] or "").strip()
    return Heading(len(m["hashes"]), text)


def scan(lines: list[str]) -> Iterator[str | Fence]:
    """The lines of a document outside code, and each fenced code block as one `Fence`."""
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        fence = fence_opening(line) if ("`" in line or "~" in line) else None
        if fence is None:
            yield line
            i += 1
            continue
        j = i + 1
        while j < n and not closes_fence(lines[j], fence):
            j += 1
        yield Fence(line, tuple(lines[i + 1 : j]), lines[j] if j < n else None)
        i = j + 1


def has_words(text: str) -> bool:
    """Whether `text` says anything once HTML tags are set aside (a lone `</div>` does not)."""
    if "<" in text:
        text = _HTML_TAG.sub("", text)
    return _WORDLIKE.search(text) is not None


def segments(text: str) -> Iterator[tuple[bool, str]]:
    """`text` as alternating (is_code, text) runs; joining them with newlines gives `text` back."""
    prose: list[str] = []
    for item in scan(text.split("\n")):
        if isinstance(item, Fence):
            if prose:
                yield False, "\n".join(prose)
                prose = []
            yield True, "\n".join((item.open, *item.body, *((item.close,) if item.close is not None else ())))
        else:
            prose.append(item)
    if prose:
        yield False, "\n".join(prose)
