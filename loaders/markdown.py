"""The corpus as LangChain Documents: one per markdown or JSON file, cleaned of site-generator markup.

The Milvus docs are written for their site generator: YAML front matter, `<!-- TOC -->` markers,
`{{var.x}}` placeholders defined in `en/Variables.json` and `{{fragments/x.md}}` includes. A reader (and an
embedding) should see what the site shows, so those are resolved here; code blocks are left verbatim.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.mdsyntax import heading, scan, segments
from loaders.sources import Corpus, as_patterns, open_corpus, select

if TYPE_CHECKING:
    from config.settings import Settings

logger = logging.getLogger(__name__)

VARIABLES_FILE = "Variables.json"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)
_TITLE = re.compile(r"^title:[ \t]*(.*?)[ \t]*$", re.M)
_INCLUDE = re.compile(r"\{\{\s*(fragments/[\w./-]+?\.md)\s*\}\}")
_VARIABLE = re.compile(r"\{\{\s*var\.([\w.-]+?)\s*\}\}")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_TAB_MARKER = re.compile(r"^[ \t]*\{\{\s*tab\s*\}\}[ \t]*$\n?", re.M)
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_HTML_TAG = re.compile(r"<[^<>]+>")
# A table's delimiter row (|------|:----:|): every `-` is a word piece of its own, so a wide table's rule
# alone can fill the embedding window. `|-|:-:|` is the same table to a markdown reader.
_TABLE_RULE_LINE = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$", re.M)
_MAX_INCLUDE_DEPTH = 4
# The index stores `source` and `title` in 1,024-byte fields; a character takes up to 4 bytes in UTF-8.
MAX_PATH_BYTES = 1024
MAX_TITLE_CHARS = 250
# Link targets and layout tags cost word pieces without telling a reader (or the embedding) anything:
# `[MinIO](https://min.io/)` reads as "MinIO". Inline code is left alone (`<collection_name>` is content).
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)")
_LAYOUT_TAG = re.compile(
    r"</?(?:div|p|b|i|u|em|strong|span|font|center|sup|sub|br|hr|a|img|code|pre|details|summary|"
    r"table|thead|tbody|tr|td|th|ul|ol|li|h[1-6])\b[^<>]*>",
    re.I,
)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class LoadStats:
    """What one pass over the corpus did; the ingest prints it and tests assert on it."""

    source: str = ""
    patterns: tuple[str, ...] = ()
    files_in_source: int = 0
    matched: int = 0
    loaded: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)

    def summary(self) -> str:
        line = (
            f"loaded {self.loaded} of {self.matched} matched files "
            f"({self.files_in_source} in {self.source}, glob {', '.join(self.patterns)})"
        )
        if self.skipped:
            line += f"; skipped {len(self.skipped)}: " + "; ".join(
                f"{s.path} ({s.reason})" for s in self.skipped
            )
        return line


class MarkdownCorpusLoader(BaseLoader):
    """Markdown and JSON files of a docs corpus (folder, zip or zip URL) picked by a glob.

    Files that cannot be read as text (too large, binary, not UTF-8, broken JSON) are skipped with a
    warning and listed in `stats`; problems with the source itself raise `SourceError`.
    Unset arguments come from the project settings (RAG_SOURCE, RAG_GLOB, ...).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | None = None,
        glob: str | Sequence[str] | None = None,
        *,
        cache_dir: Path | None = None,
        max_file_bytes: int | None = None,
        download_timeout: float | None = None,
        progress: bool | None = True,
    ) -> None:
        if None in (source, glob, cache_dir, max_file_bytes, download_timeout):
            from config.settings import get_settings

            settings = get_settings()
            source = settings.source if source is None else source
            glob = settings.glob if glob is None else glob
            cache_dir = settings.cache_dir if cache_dir is None else cache_dir
            max_file_bytes = settings.max_file_bytes if max_file_bytes is None else max_file_bytes
            download_timeout = settings.download_timeout if download_timeout is None else download_timeout
        assert source is not None and glob is not None
        assert max_file_bytes is not None and download_timeout is not None
        self.source = source
        self.patterns = as_patterns(glob)
        self.cache_dir = cache_dir
        self.max_file_bytes = max_file_bytes
        self.download_timeout = float(download_timeout)
        self.progress = progress
        self.stats = LoadStats()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        source: str | os.PathLike[str] | None = None,
        glob: str | Sequence[str] | None = None,
        progress: bool | None = True,
    ) -> MarkdownCorpusLoader:
        """The loader for an already-read settings object (command-line overrides win over it)."""
        return cls(
            settings.source if source is None else source,
            settings.glob if glob is None else glob,
            cache_dir=settings.cache_dir,
            max_file_bytes=settings.max_file_bytes,
            download_timeout=settings.download_timeout,
            progress=progress,
        )

    def lazy_load(self) -> Iterator[Document]:
        corpus = open_corpus(
            self.source,
            cache_dir=self.cache_dir,
            download_timeout=self.download_timeout,
            progress=self.progress,
        )
        try:
            paths = select(corpus, self.patterns)
            self.stats = stats = LoadStats(
                source=corpus.description,
                patterns=self.patterns,
                files_in_source=len(corpus.paths()),
                matched=len(paths),
            )
            templates = _Templates(corpus)
            for path in paths:
                doc = self._load_one(corpus, path, templates, stats)
                if doc is not None:
                    stats.loaded += 1
                    yield doc
        finally:
            corpus.close()

    def _load_one(
        self, corpus: Corpus, path: str, templates: _Templates, stats: LoadStats
    ) -> Document | None:
        special = corpus.special(path)
        if special is not None:
            return _skip(stats, path, special)
        if len(path.encode()) > MAX_PATH_BYTES:
            return _skip(stats, path, f"path longer than {MAX_PATH_BYTES} bytes (the index's `source` field)")
        size = corpus.size(path)
        if size > self.max_file_bytes:
            return _skip(
                stats, path, f"larger than RAG_MAX_FILE_BYTES ({size} > {self.max_file_bytes} bytes)"
            )
        data = corpus.read(path)
        text_or_reason = decode_text(data)
        if isinstance(text_or_reason, SkippedFile):
            return _skip(stats, path, text_or_reason.reason)
        text = text_or_reason
        if path.lower().endswith(".json"):
            try:
                content, title = json_to_text(json.loads(text)), _stem(path)
            except ValueError as exc:
                return _skip(stats, path, f"invalid JSON: {exc}")
        else:
            content, title = markdown_to_text(text, path, templates)
        return Document(
            page_content=content,
            metadata={
                "source": path,
                "title": title,
                "content_hash": hashlib.sha256(data).hexdigest(),
                "heading": "",
            },
        )


def _skip(stats: LoadStats, path: str, reason: str) -> None:
    logger.warning("skipped %s: %s", path, reason)
    stats.skipped.append(SkippedFile(path, reason))
    return None


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0]


def decode_text(data: bytes) -> str | SkippedFile:
    """The file as text with `\\n` line ends, or why it is not text."""
    if b"\0" in data:
        return SkippedFile("", "binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return SkippedFile("", f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _Templates:
    """Resolves `{{var.x}}` and `{{fragments/x.md}}` from the nearest enclosing folder that defines them."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._variables: dict[str, dict[str, Any]] = {}
        self._fragments: dict[str, str | None] = {}

    def _nearest(self, doc_path: str, rel: str) -> str | None:
        folder = posixpath.dirname(doc_path)
        while True:
            candidate = posixpath.join(folder, rel) if folder else rel
            if self.corpus.has(candidate):
                return candidate
            if not folder:
                return None
            folder = posixpath.dirname(folder)

    def variables(self, doc_path: str) -> dict[str, Any]:
        where = self._nearest(doc_path, VARIABLES_FILE)
        if where is None:
            return {}
        if where not in self._variables and self.corpus.special(where):
            logger.warning("%s is %s; {{var.*}} placeholders stay as they are", where, self.corpus.special(where))
            self._variables[where] = {}
        if where not in self._variables:
            values: dict[str, Any] = {}
            try:
                loaded = json.loads(self.corpus.read(where).decode("utf-8-sig"))
                if isinstance(loaded, dict):
                    values = loaded
                else:
                    logger.warning("%s is not a JSON object; {{var.*}} placeholders stay as they are", where)
            except (ValueError, UnicodeDecodeError) as exc:
                logger.warning("%s cannot be read (%s); {{var.*}} placeholders stay as they are", where, exc)
            self._variables[where] = values
        return self._variables[where]

    def fragment(self, doc_path: str, rel: str) -> str | None:
        where = self._nearest(doc_path, rel)
        if where is None:
            logger.warning("%s includes {{%s}}, which is not in the corpus; left as it is", doc_path, rel)
            return None
        if where not in self._fragments and self.corpus.special(where):
            logger.warning("%s cannot be included (%s); left as it is", where, self.corpus.special(where))
            self._fragments[where] = None
        if where not in self._fragments:
            text = decode_text(self.corpus.read(where))
            if isinstance(text, SkippedFile):
                logger.warning("%s cannot be included (%s); left as it is", where, text.reason)
                self._fragments[where] = None
            else:
                self._fragments[where] = _strip_front_matter(text)[0].strip("\n")
        return self._fragments[where]

    def expand(self, text: str, doc_path: str, depth: int = 0) -> str:
        if "{{" not in text:
            return text
        if depth < _MAX_INCLUDE_DEPTH and "fragments/" in text:

            def include(m: re.Match[str]) -> str:
                body = self.fragment(doc_path, m.group(1))
                return m.group(0) if body is None else self.expand(body, doc_path, depth + 1)

            text = _INCLUDE.sub(include, text)
        if "var." in text:
            variables = self.variables(doc_path)
            if variables:

                def substitute(m: re.Match[str]) -> str:
                    value: Any = variables
                    for key in m.group(1).split("."):
                        if not isinstance(value, dict) or key not in value:
                            return m.group(0)
                        value = value[key]
                    return m.group(0) if isinstance(value, dict | list) else str(value)

                text = _VARIABLE.sub(substitute, text)
        return text


def _strip_front_matter(text: str) -> tuple[str, str | None]:
    m = _FRONT_MATTER.match(text)
    if m is None:
        return text, None
    title = _TITLE.search(m.group(1))
    value = title.group(1).strip() if title else ""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return text[m.end() :], value or None


def _short_rule(m: re.Match[str]) -> str:
    line = m.group(0).strip()
    cells = [c.strip() for c in line.strip("|").split("|")]
    short = ["".join((":" if c.startswith(":") else "", "-", ":" if c.endswith(":") else "")) for c in cells]
    return "|" + "|".join(short) + "|"


def _clean_prose(text: str) -> str:
    text = _COMMENT.sub("", text) if "<!--" in text else text
    text = _TAB_MARKER.sub("", text) if "{{" in text else text
    text = _TABLE_RULE_LINE.sub(_short_rule, text) if "--" in text else text
    if "](" in text or "<" in text:
        text = _outside_inline_code(text, _simplify_markup)
    return _BLANK_RUNS.sub("\n\n", text)


def _simplify_markup(text: str) -> str:
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    return _LAYOUT_TAG.sub(lambda m: " " if m.group(0).lower().startswith("<br") else "", text)


def _outside_inline_code(text: str, change: Callable[[str], str]) -> str:
    out, last = [], 0
    for m in _INLINE_CODE.finditer(text):
        out.append(change(text[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(change(text[last:]))
    return "".join(out)


def markdown_to_text(text: str, path: str, templates: _Templates | None = None) -> tuple[str, str]:
    """The page as a reader sees it, and its title (front matter, else first `# ` heading, else file stem)."""
    body, title = _strip_front_matter(text)
    if templates is not None:
        body = templates.expand(body, path)
        if title and "{{" in title:
            title = templates.expand(title, path)
    body = "\n".join(code if is_code else _clean_prose(code) for is_code, code in segments(body))
    body = body.strip("\n")
    if not title:
        title = next(
            (
                h.text
                for item in scan(body.split("\n"))
                if isinstance(item, str) and (h := heading(item)) and h.level == 1 and h.text
            ),
            None,
        )
    title = " ".join((title or _stem(path)).split())
    return body, title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "<" in text:
        text = _HTML_TAG.sub("", text)
    return " ".join(text.split())


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def json_to_text(value: Any) -> str:
    """JSON as indented `key: value` lines (empty values left out), list items of objects a paragraph each."""
    lines: list[str] = []

    def render(v: Any, pad: str, lead: str) -> None:
        # `lead` is what starts the first line ("- " for list items), `pad` what starts the others.
        if isinstance(v, dict):
            first = True
            for k, item in v.items():
                if _empty(item):
                    continue
                start = lead if first else pad
                first = False
                if isinstance(item, dict | list):
                    lines.append(f"{start}{k}:")
                    render(item, pad + "  ", pad + "  ")
                else:
                    lines.append(f"{start}{k}: {_scalar(item)}")
        elif isinstance(v, list):
            for item in v:
                if _empty(item):
                    continue
                if isinstance(item, dict | list):
                    if lines and lines[-1]:
                        lines.append("")
                    render(item, pad + "  ", pad + "- ")
                else:
                    lines.append(f"{pad}- {_scalar(item)}")
        else:
            lines.append(f"{lead}{_scalar(v)}")

    render(value, "", "")
    return "\n".join(lines).strip("\n")


__all__ = [
    "LoadStats",
    "MarkdownCorpusLoader",
    "SkippedFile",
    "decode_text",
    "json_to_text",
    "markdown_to_text",
]
