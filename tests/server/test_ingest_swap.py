"""The server's retriever across an ingest's collection swap, in one process on a real Milvus Lite index: a search
that finds the collection renamed away waits for the ingest to finish and answers; other failures are not held."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.errors import ConfigError
from tests.server.conftest import GOLD_HEADING, QUESTION


class Announce(logging.Handler):
    """Sets `seen` when the retriever says it is waiting for the swap: the test's cue, instead of a sleep."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "collection swap" in record.getMessage():
            self.seen.set()


@pytest.fixture
def announce() -> Iterator[Announce]:
    logger = logging.getLogger("server.retriever")
    handler, level = Announce(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def served_retriever(faq_index: Path, model_cache_dir: Path) -> Iterator[tuple]:
    from config.settings import get_settings
    from index.store import release
    from retrieval.retriever import build_retriever, open_store
    from server.ingest import IngestGate
    from server.retriever import served

    settings = get_settings(data_dir_override=faq_index, cache_dir_override=model_cache_dir)
    current: list = []
    gate = IngestGate(lambda: current[0])
    store = open_store(settings)
    current.append(served(build_retriever(settings, store=store, mode="hybrid"), gate))
    try:
        yield current[0], gate, store.client, settings.collection
    finally:
        release(settings, store.client)


def test_a_search_during_the_swap_waits_for_the_ingest_then_answers(served_retriever, announce):
    from index.store import ensure_loaded

    retriever, gate, client, name = served_retriever
    answers: list = []
    gate.begin()
    client.rename_collection(name, name + "__old")  # where a --rebuild is between its two renames
    try:
        search = threading.Thread(target=lambda: answers.append(retriever.invoke(QUESTION)))
        search.start()
        assert announce.seen.wait(60), "the search did not meet the swap"
        assert not answers
    finally:
        client.rename_collection(name + "__old", name)
        ensure_loaded(client, name)
        gate.end()
    search.join(60)
    (docs,) = answers
    assert docs[0].metadata["heading"] == GOLD_HEADING and docs[0].metadata["mode"] == "hybrid"


def test_a_bad_filter_during_an_ingest_fails_at_once_with_its_own_line(served_retriever, announce):
    retriever, gate, _, _ = served_retriever
    gate.begin()
    try:
        with pytest.raises(ConfigError, match="is not a valid Milvus expression"):
            retriever.model_copy(update={"filter": "source like"}).invoke(QUESTION)
    finally:
        gate.end()
    assert not announce.seen.is_set()
