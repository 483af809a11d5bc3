"""Telling a damaged index from a sound one by reading it, and moving the damage aside (never deleting it).

Above `index.store` and `index.ingest` (it opens and reads collections); `index.health` below them only
classifies errors and keeps the ingest record.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import DamagedIndexError
from config.settings import Settings
from index.health import count_rows, damage_guard, move_aside, not_a_folder
from index.ingest import OLD_SUFFIX, REBUILD_SUFFIX
from index.store import describe, ensure_loaded, open_client, release

if TYPE_CHECKING:
    from pymilvus import MilvusClient

log = logging.getLogger(__name__)


def probe(client: MilvusClient, settings: Settings) -> None:
    """Everything that reads the collection's files: schema, segments, indexes, row count."""
    for name in (settings.collection, settings.collection + OLD_SUFFIX, settings.collection + REBUILD_SUFFIX):
        if describe(client, name) is not None:
            ensure_loaded(client, name)
            count_rows(client, name)



def repair(settings: Settings) -> list[Path]:
    """Move a damaged collection (or database, or a file in its place) aside; what was moved, where to.

    An index that opens, loads and counts is left alone. A folder another process holds raises
    `IndexLockedError` before anything is touched.
    """
    if not settings.uses_lite:
        return []
    moved: list[Path] = []
    if not_a_folder(settings) is not None:
        moved.append(move_aside(settings, whole_database=True))
        return moved
    if not settings.milvus_lite_path.exists():
        return moved
    for whole in (False, True):
        client = None
        try:
            client = open_client(settings)
            with damage_guard(settings):
                probe(client, settings)
            return moved
        except DamagedIndexError as exc:
            log.debug("damaged: %s", exc.problem)
        finally:
            release(settings, *([client] if client is not None else []))
        moved.append(move_aside(settings, whole_database=whole))
        if not settings.milvus_lite_path.exists():
            return moved
    return moved
