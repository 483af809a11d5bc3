"""Heading-aware, code-fence-aware chunks that fit the embedding model's window.

Every chunk belongs to exactly one section and starts with its heading path, so the question heading of a
FAQ entry is embedded together with its answer. The embedding model silently truncates at its window
(256 word pieces for all-MiniLM-L6-v2), so every chunk is measured with the model's own tokenizer;
anything past the window would never be searchable.

The window and the tokenizer are the caller's: `MarkdownSplitter.from_tokenizer(tokenizer, max_tokens)`
takes the embedding model's own (a `tokenizers.Tokenizer`), so this layer knows no model.

Counting tokens is the hot path. With a tokenizer whose pre-tokenizer splits on whitespace (WordPiece,
as `from_tokenizer` assumes) and with `len`, the length of joined pieces is the sum of the pieces'
lengths, so each paragraph is counted once and chunks are sized by addition. Any other
`length_function` is treated as non-additive: every chunk is measured again and split further until it fits.

Hostile text is bounded too. WordPiece turns any run of more than 100 characters without whitespace or
punctuation into one `[UNK]`, so a 70 KB base64 line measures a few tokens and would pass as one chunk,
beyond Milvus' 65,535-byte `text` field. Every piece therefore also costs by its length (`_floor`: about
a token per 31 characters for the default 16,000 characters and 256 tokens, while the Milvus docs' densest
lines, padded table rows, run at 17), so no chunk exceeds `max_chars` whatever its tokens; runs without
whitespace are cut to fit both.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.documents import Document
from langchain_text_splitters import TextSplitter

from loaders.mdsyntax import Fence, has_words, heading, scan

HEADING_SEPARATOR = " > "
_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？])\s+")
_WORDLIKE = re.compile(r"\w")
_NORMALIZE = re.compile(r"[\s`*_]+")
#: Sections that only point elsewhere ("What's next", "See also", ...): lists of link texts once links are
#: rendered as text, they match any query about their targets and crowd out the pages they point to.
NAVIGATION_HEADINGS = re.compile(r"(what'?s next|next steps?|see also|related (topics|articles|pages|links))\W*", re.I)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
#: Milvus' largest VARCHAR is 65,535 bytes and a character takes up to 4 in UTF-8: no chunk is longer.
MAX_CHUNK_CHARS = 16_000
#: With a small window, `max_chars` is at most this many characters a token (see `_floor`).
CHARS_PER_TOKEN = 64
#: What the memo of cut words may hold (each word is held twice: as the key and in its pieces).
_CUT_MEMO_CHARS = 8_000_000
#: The heading path is stored in a 2,048-byte field (`heading`): 500 characters fit whatever the script.
MAX_HEADING_CHARS = 500


class Tokenizer(Protocol):
    """What `from_tokenizer` needs: the `tokenizers.Tokenizer` interface (no truncation, no padding)."""

    def encode(self, sequence: str) -> Any: ...

    def encode_batch_fast(self, input: list[str]) -> list[Any]: ...


def chunk_id(source: str, content_hash: str, chunk_index: int) -> str:
    """The chunk's stable id: same file bytes and position, same id, on every run and machine."""
    return hashlib.sha256(f"{source}\0{content_hash}\0{chunk_index}".encode()).hexdigest()[:32]


@dataclass
class Section:
    """The text under one heading, up to the next heading of any level, and the path of headings above it."""

    path: tuple[str, ...]
    blocks: list[str | Fence]


@dataclass(frozen=True)
class _Unit:
    """A piece of a section that is never cut further when chunks are packed."""

    text: str
    cost: int
    sep: str  # what joins it to the unit before it in the same chunk
    framed: bool = False  # a (piece of a) code block or table: never carried over as overlap


def _same(a: str, b: str) -> bool:
    return _NORMALIZE.sub(" ", a).strip().casefold() == _NORMALIZE.sub(" ", b).strip().casefold()


def sections(text: str, title: str = "") -> list[Section]:
    """The document's sections in order, each with its heading path (title first, no repeated names)."""
    out: list[Section] = []
    stack: list[tuple[int, str]] = []
    path: tuple[str, ...] = _path(title, stack)
    blocks: list[str | Fence] = []
    para: list[str] = []

    def end_paragraph() -> None:
        if para:
            blocks.append("\n".join(para))
            para.clear()

    for item in scan(text.split("\n")):
        if isinstance(item, Fence):
            end_paragraph()
            blocks.append(item)
            continue
        h = heading(item)
        if h is not None:
            end_paragraph()
            out.append(Section(path, blocks))
            blocks = []
            while stack and stack[-1][0] >= h.level:
                stack.pop()
            stack.append((h.level, h.text))
            path = _path(title, stack)
        elif item.strip():
            para.append(item.rstrip())
        else:
            end_paragraph()
    end_paragraph()
    out.append(Section(path, blocks))
    return [s for s in out if any(_has_words(b) for b in s.blocks)]


def _path(title: str, stack: list[tuple[int, str]]) -> tuple[str, ...]:
    names: list[str] = []
    for name in (title, *(t for _, t in stack)):
        if name and not (names and _same(names[-1], name)):
            names.append(name)
    return tuple(names)


def _has_words(block: str | Fence) -> bool:
    if isinstance(block, Fence):
        return any(_WORDLIKE.search(line) for line in block.body)
    return has_words(block)


class MarkdownSplitter(TextSplitter):
    """Splits markdown Documents into heading-prefixed chunks of at most `max_tokens`.

    `page_content` is `heading path + "\\n\\n" + body` (the text that gets embedded); metadata gets
    `heading`, `chunk_index` and `n_chunks`, and `Document.id` is `chunk_id(source, content_hash, index)`.
    Long sections are cut at paragraphs, then lines, then sentences, then words, the next piece starting
    with up to `overlap_tokens` of the previous one; a code block longer than the window is cut at lines
    and each piece fenced again. Sections whose own heading matches `skip_headings` (navigation such as
    "What's next") are left out; pass None to keep them.
    """

    def __init__(
        self,
        max_tokens: int,
        overlap_tokens: int | None = None,
        *,
        length_function: Callable[[str], int] | None = None,
        batch_length_function: Callable[[list[str]], list[int]] | None = None,
        additive: bool | None = None,
        heading_separator: str = HEADING_SEPARATOR,
        skip_headings: re.Pattern[str] | None = NAVIGATION_HEADINGS,
        cache_size: int = 1 << 17,
        max_chars: int = MAX_CHUNK_CHARS,
    ) -> None:
        overlap = max_tokens // 8 if overlap_tokens is None else overlap_tokens
        measure = length_function or len
        super().__init__(chunk_size=max_tokens, chunk_overlap=overlap, length_function=measure)
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap
        self.heading_separator = heading_separator
        self.skip_headings = skip_headings
        self.additive = (measure is len) if additive is None else additive
        self._length = measure
        self._batch_length = batch_length_function
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size
        self._base: int | None = None
        # Blocks longer than this (in characters) are measured line by line when lengths add up, so that
        # a block too long for one chunk is not tokenized twice (once whole, once per line).
        self._line_threshold = 2 * max_tokens
        # No chunk longer than this, whatever its tokens (see the module docstring).
        self.max_chars = max(1, min(max_chars, max_tokens * CHARS_PER_TOKEN))
        self._cuts: dict[tuple[str, int], list[str]] = {}

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, max_tokens: int, **kwargs: Any) -> MarkdownSplitter:
        """Chunks measured in the model's own tokens ([CLS]/[SEP] included), `max_tokens` its window."""

        def count(text: str) -> int:
            return len(tokenizer.encode(text).ids)

        def count_batch(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in tokenizer.encode_batch_fast(texts)]

        kwargs.setdefault("additive", True)
        return cls(max_tokens, length_function=count, batch_length_function=count_batch, **kwargs)

    # ---- LangChain TextSplitter interface ------------------------------------------------------------

    def split_text(self, text: str) -> list[str]:
        return [chunk for _, chunk in self._chunks(text, "")]

    def create_documents(
        self, texts: list[str], metadatas: list[dict[Any, Any]] | None = None
    ) -> list[Document]:
        metadatas = metadatas or [{} for _ in texts]
        return self.split_documents(
            Document(page_content=t, metadata=dict(m)) for t, m in zip(texts, metadatas, strict=True)
        )

    def split_documents(self, documents: Iterable[Document]) -> list[Document]:
        docs = list(documents)
        found = [sections(d.page_content, str(d.metadata.get("title") or "")) for d in docs]
        if self._batch_length is not None:  # one tokenizer call for everything, spread over its threads
            self._prefetch([text for f in found for text in self._pieces(f)])
        out: list[Document] = []
        for doc, doc_sections in zip(docs, found, strict=True):
            out.extend(self.split_document(doc, doc_sections))
        return out

    def split_document(self, doc: Document, found: list[Section] | None = None) -> list[Document]:
        """The chunks of one document (`found`: its `sections`, when already computed)."""
        meta = doc.metadata
        title = str(meta.get("title") or "")
        source = str(meta.get("source") or "")
        content_hash = str(meta.get("content_hash") or hashlib.sha256(doc.page_content.encode()).hexdigest())
        pieces = self._chunks(doc.page_content, title, found)
        return [
            Document(
                id=chunk_id(source, content_hash, i),
                page_content=text,
                metadata={**meta, "heading": path, "chunk_index": i, "n_chunks": len(pieces)},
            )
            for i, (path, text) in enumerate(pieces)
        ]

    # ---- measuring -----------------------------------------------------------------------------------

    def _measure(self, text: str) -> int:
        n = self._cache.get(text)
        if n is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            n = self._cache[text] = self._length(text)
        return n

    def _prefetch(self, texts: list[str]) -> None:
        """Measure in one batch call what the chunking is about to ask for one by one."""
        if self._batch_length is None:
            return
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if len(self._cache) + len(todo) > self._cache_size:
            self._cache.clear()
        if todo:
            self._cache.update(zip(todo, self._batch_length(todo), strict=True))

    @property
    def _specials(self) -> int:
        """What every measurement adds whatever the text ([CLS] and [SEP] for the model's tokenizer)."""
        if self._base is None:
            self._base = self._measure("")
        return self._base

    def _floor(self, text: str) -> int:
        """What `text` costs by its characters alone, so that a chunk within `max_tokens` stays within
        `max_chars`. Twice the share, rounded down: a separator costs nothing, and a piece that costs a
        token anyway still pays at least its share of the characters."""
        return 2 * len(text) * self.max_tokens // self.max_chars

    def _cost(self, text: str) -> int:
        """`text`'s share of a chunk's length: its length without the specials, at least its `_floor`."""
        return max(self._measure(text) - self._specials, self._floor(text))

    def _fits(self, text: str) -> bool:
        return self._measure(text) <= self.max_tokens and len(text) <= self.max_chars

    # ---- chunking ------------------------------------------------------------------------------------

    def _chunks(self, text: str, title: str, found: list[Section] | None = None) -> list[tuple[str, str]]:
        """(heading path, page_content) for every chunk of the document."""
        out: list[tuple[str, str]] = []
        if found is None:
            found = sections(text, title)
            if self._batch_length is not None:
                self._prefetch(list(self._pieces(found)))
        found = [s for s in found if not self._skipped(s)]
        paths = [self.heading_separator.join(section.path) for section in found]
        for full_path, section in zip(paths, found, strict=True):
            path = self._fit_heading(full_path)
            head = f"{path}\n\n" if path else ""
            for body in self._split_section(head, section.blocks):
                out.append((path, head + body))
        return out

    def _skipped(self, section: Section) -> bool:
        """A navigation section (by its own heading, not the page title) is left out of the index."""
        return bool(self.skip_headings and len(section.path) > 1 and self.skip_headings.fullmatch(section.path[-1]))

    def _pieces(self, found: list[Section]) -> Iterable[str]:
        """Every string the chunking measures first: heading lines and blocks (see `_block_cost`)."""
        yield ""
        for section in found:
            if section.path:
                yield self.heading_separator.join(section.path) + "\n\n"
            for block in section.blocks:
                if isinstance(block, Fence):
                    text = block.text()
                    if self.additive and len(text) > self._line_threshold:
                        yield from (block.open, block.closing, "\n", *block.body)
                    else:
                        yield text
                elif self.additive and len(block) > self._line_threshold:
                    yield "\n"
                    yield from block.split("\n")
                else:
                    yield block

    def _fit_heading(self, path: str) -> str:
        """Heading paths are short; one that would eat more than half the window is cut to its end."""
        limit = self.max_tokens // 2
        if not path or (len(path) <= MAX_HEADING_CHARS and self._cost(f"{path}\n\n") <= limit):
            return path
        words = path.split()
        while len(words) > 1 and self._cost("… " + " ".join(words) + "\n\n") > limit:
            words = words[len(words) // 4 or 1 :]
        tail = " ".join(words)[-MAX_HEADING_CHARS:]
        while len(tail) > 1 and self._cost("… " + tail + "\n\n") > limit:  # one word without spaces
            tail = tail[len(tail) // 4 or 1 :]
        return "… " + tail

    def _split_section(self, head: str, blocks: Sequence[str | Fence]) -> list[str]:
        budget = self.max_tokens - self._specials - (self._cost(head) if head else 0)
        bodies = self._pack(blocks, budget)
        if len(bodies) > 1 and self.additive:
            bodies = self._balance(blocks, budget, bodies)
        if not self.additive:
            bodies = [piece for body in bodies for piece in self._enforce(head, body)]
        return [b for b in bodies if has_words(b)]

    def _pack(self, blocks: Sequence[str | Fence], budget: int) -> list[str]:
        packer = _Packer(self, budget)
        for block in blocks:
            self._add_block(block, packer)
        return packer.finish()

    def _balance(self, blocks: Sequence[str | Fence], budget: int, greedy: list[str]) -> list[str]:
        """Greedy packing leaves a short last chunk (250 + 35 tokens) whose few lines are carried by the
        heading alone; the same number of chunks of even size keeps each one about its subject."""
        n = len(greedy)
        target = -(-sum(self._cost(b) for b in greedy) // n) + self.overlap_tokens
        step = max(8, budget // 16)
        while target < budget:
            trial = self._pack(blocks, target)
            if len(trial) <= n:
                return trial
            target += step
        return greedy

    def _block_cost(self, text: str, lines: Sequence[str]) -> int:
        """The block's length: summed over its lines for long blocks when lengths add up, else measured."""
        if not self.additive or len(text) <= self._line_threshold:
            return self._cost(text)
        return sum(self._cost(line) for line in lines) + (len(lines) - 1) * self._cost("\n")

    def _add_block(self, block: str | Fence, packer: _Packer) -> None:
        budget = packer.budget
        if isinstance(block, Fence):
            if not _has_words(block):
                return
            text = block.text()
            cost = self._block_cost(text, (block.open, *block.body, block.closing))
            if cost <= budget:
                packer.add(_Unit(text, cost, "\n\n", framed=True))
            else:
                self._add_framed([block.open], block.body, [block.closing], "\n\n", packer)
            return
        lines = block.split("\n")
        cost = self._block_cost(block, lines)
        if cost <= budget:
            packer.add(_Unit(block, cost, "\n\n"))
            return
        i = 0
        while i < len(lines):
            sep = "\n\n" if i == 0 else "\n"
            end = _table_end(lines, i)
            # A table is cut at rows, each piece repeating the header and rule (unless they are too wide).
            if end > i and self._cost(lines[i]) + self._cost(lines[i + 1]) <= budget // 2:
                table = lines[i:end]
                self._add_framed(table[:2], table[2:], [], sep, packer)
                i = end
            else:
                for unit in self._first_sep(self._text_units(lines[i], budget, "\n"), sep):
                    packer.add(unit)
                i += 1

    def _text_units(self, line: str, budget: int, sep: str) -> list[_Unit]:
        cost = self._cost(line)
        if cost <= budget:
            return [_Unit(line, cost, sep)]
        units: list[_Unit] = []
        sentences = _SENTENCE_END.split(line.strip())
        if len(sentences) > 1:
            for sentence in sentences:
                units.extend(self._text_units(sentence, budget, " "))
        else:
            units.extend(_Unit(w, self._cost(w), " ") for w in self._words(line, budget))
        return self._first_sep(units, sep)

    @staticmethod
    def _first_sep(units: list[_Unit], sep: str) -> list[_Unit]:
        if units and units[0].sep != sep:
            first = units[0]
            units[0] = _Unit(first.text, first.cost, sep, first.framed)
        return units

    def _words(self, text: str, budget: int) -> list[str]:
        """`text` cut at spaces into pieces within `budget` (a single over-long word is cut anywhere)."""
        pieces: list[str] = []
        current: list[str] = []
        used = 0
        space = self._cost(" ")
        for word in text.split():
            cost = self._cost(word)
            if cost > budget:
                if current:
                    pieces.append(" ".join(current))
                    current, used = [], 0
                pieces.extend(self._cut(word, budget))
                continue
            extra = cost + (space if current else 0)
            if current and used + extra > budget:
                pieces.append(" ".join(current))
                current, used, extra = [], 0, cost
            current.append(word)
            used += extra
        if current:
            pieces.append(" ".join(current))
        return pieces

    def _cut(self, word: str, budget: int) -> list[str]:
        """A word without spaces (a hash, a minified line, base64) cut into the longest prefixes within
        `budget`; cuts are remembered for the re-packing in `_balance`."""
        key = (word, budget)
        if key in self._cuts:
            return self._cuts[key]
        if len(self._cuts) >= 64 or sum(len(w) for w, _ in self._cuts) > _CUT_MEMO_CHARS:
            self._cuts.clear()
        most = max(1, budget * self.max_chars // self.max_tokens)  # a longer piece costs more by its floor
        pieces = self._cut_long(word, budget, most) if len(word) > most else self._bisect(word, budget)
        self._cuts[key] = pieces
        return pieces

    def _bisect(self, word: str, budget: int) -> list[str]:
        pieces = []
        while word:
            lo, hi = 1, len(word)
            while lo < hi:  # the longest prefix that fits
                mid = (lo + hi + 1) // 2
                if self._cost(word[:mid]) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            pieces.append(word[:lo])
            word = word[lo:]
        return pieces

    def _cut_long(self, word: str, budget: int, most: int) -> list[str]:
        """A run longer than a chunk can hold (a 2 MB minified line): each piece's length is found by a few
        proportional steps from the previous one's, not by bisection (a tokenizer call is ~1 ms here), and
        is close to the longest that fits. Pieces are measured uncached, so they do not flood the cache."""

        def cost(text: str) -> int:
            return max(self._length(text) - self._specials, self._floor(text))

        pieces: list[str] = []
        start = n = 0
        near = budget - budget // 16
        while start < len(word):
            hi = min(len(word) - start, most)
            n, best = min(hi, n or hi), 0
            for _ in range(8):
                c = cost(word[start : start + n])
                if c <= budget:
                    best = max(best, n)
                    if n == hi or c >= near:
                        break
                step = max(1, n * (budget - budget // 32) // max(c, 1))
                n = min(hi, step if step != n else n + (1 if c <= budget else -1))
                if n < 1:
                    break
            if best == 0:
                best = max(1, min(hi, n))
                while best > 1 and cost(word[start : start + best]) > budget:
                    best //= 2
            pieces.append(word[start : start + best])
            start, n = start + best, best
        return pieces

    def _add_framed(
        self, top: Sequence[str], rows: Sequence[str], bottom: Sequence[str], sep: str, packer: _Packer
    ) -> None:
        """A code block or table too long for one chunk, cut at rows; every piece gets the same frame
        (the fence lines, or the table's header and rule) so that it reads as code or as a table.
        The first piece fills what is left of the current chunk, so the sentence introducing a code
        block stays with its first lines."""
        budget = packer.budget
        nl = self._cost("\n")
        # Frame lines and the line breaks that join them to the rows: len(top) + len(bottom) of them.
        frame = sum(self._cost(line) for line in (*top, *bottom)) + (len(top) + len(bottom)) * nl
        room = max(budget - frame, 1)
        fitted: list[tuple[str, int]] = []
        for row in rows:
            cost = self._cost(row)
            if cost <= room:
                fitted.append((row, cost))
            else:
                indent = row[: len(row) - len(row.lstrip())]
                words = self._words(row, max(room - self._cost(indent), 1))
                fitted.extend((indent + w, self._cost(indent + w)) for w in words)
        first_room = packer.room() - frame
        fits_first = fitted and first_room >= max(budget // 4, fitted[0][1])
        limit = first_room if fits_first else room
        piece: list[str] = []
        used = 0

        def flush() -> None:
            if any(_WORDLIKE.search(p) for p in piece):
                text = "\n".join((*top, *piece, *bottom))
                packer.add(_Unit(text, frame + used, sep, framed=True))

        for row, cost in fitted:
            extra = cost + (nl if piece else 0)
            if piece and used + extra > limit:
                flush()
                piece, used, extra, limit, sep = [], 0, cost, room, "\n\n"
            piece.append(row)
            used += extra
        if piece:
            flush()

    def _overlap(self, previous: list[_Unit], following: _Unit, budget: int) -> list[_Unit]:
        """The end of the previous body (prose only, at most `overlap_tokens`) to start the next one with."""
        if self.overlap_tokens <= 0 or not previous or previous[-1].framed:
            return []
        carried: list[_Unit] = []
        for unit in reversed(previous[1:]):  # never carry the whole previous body
            if unit.framed or _total([unit, *carried], self._cost) > self.overlap_tokens:
                break
            carried.insert(0, unit)
        if not carried:
            last = previous[-1]
            sentences = _SENTENCE_END.split(last.text)
            tail: list[str] = []
            for sentence in reversed(sentences[1:]):
                if self._cost(" ".join([sentence, *tail])) > self.overlap_tokens:
                    break
                tail.insert(0, sentence)
            if tail:
                text = " ".join(tail)
                carried = [_Unit(text, self._cost(text), last.sep)]
        if not carried:
            return []
        need = _total(carried, self._cost) + self._cost(following.sep) + following.cost
        return carried if need <= budget else []

    def _enforce(self, head: str, body: str) -> list[str]:
        """For non-additive length functions: measure the finished chunk and halve it until it fits."""
        if self._fits(head + body):
            return [body]
        for sep in ("\n\n", "\n", " "):
            parts = body.split(sep)
            if len(parts) > 1:
                mid = len(parts) // 2
                return self._enforce(head, sep.join(parts[:mid])) + self._enforce(head, sep.join(parts[mid:]))
        if len(body) <= 1:
            return [body]
        mid = len(body) // 2
        return self._enforce(head, body[:mid]) + self._enforce(head, body[mid:])


class _Packer:
    """Greedy packing of units into chunk bodies within `budget`, each new body overlapping the last."""

    def __init__(self, splitter: MarkdownSplitter, budget: int) -> None:
        self.splitter = splitter
        self.budget = budget
        self.bodies: list[str] = []
        self.current: list[_Unit] = []
        self.used = 0

    def room(self) -> int:
        """What a unit may cost and still join the current body."""
        if not self.current:
            return self.budget
        return self.budget - self.used - self.splitter._cost("\n\n")

    def add(self, unit: _Unit) -> None:
        cost = self.splitter._cost
        extra = unit.cost + (cost(unit.sep) if self.current else 0)
        if self.current and self.used + extra > self.budget:
            self.bodies.append(_join(self.current))
            self.current = self.splitter._overlap(self.current, unit, self.budget)
            self.used = _total(self.current, cost)
            extra = unit.cost + (cost(unit.sep) if self.current else 0)
        self.current.append(unit)
        self.used += extra

    def finish(self) -> list[str]:
        if self.current:
            self.bodies.append(_join(self.current))
            self.current = []
        return self.bodies


def _table_end(lines: Sequence[str], i: int) -> int:
    """Where the table starting at line `i` (header, rule, rows) ends; `i` if no table starts there."""
    if (
        i + 1 >= len(lines)
        or "|" not in lines[i]
        or not _TABLE_RULE.match(lines[i + 1])
        or "-" not in lines[i + 1]
    ):
        return i
    end = i + 2
    while end < len(lines) and "|" in lines[end]:
        end += 1
    return end


def _join(units: list[_Unit]) -> str:
    return "".join((u.sep if i else "") + u.text for i, u in enumerate(units))


def _total(units: list[_Unit], cost: Callable[[str], int]) -> int:
    return sum(u.cost for u in units) + sum(cost(u.sep) for u in units[1:])


__all__ = [
    "HEADING_SEPARATOR",
    "MarkdownSplitter",
    "Section",
    "Tokenizer",
    "chunk_id",
    "sections",
]
