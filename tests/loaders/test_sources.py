"""Corpus sources: folder, zip and zip URL, and every way they fail, as a user would meet them."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest

from config.errors import SourceError
from loaders.sources import (
    ALL_GLOB,
    FolderCorpus,
    ZipCorpus,
    cached_download_path,
    display_url,
    download_zip,
    match_paths,
    open_corpus,
    select,
    unsafe_member,
)
from tests.loaders.conftest import DocsServer
from tests.loaders.support import corrupt_copy, files_under, zip_bytes

FAQ = [
    "en/faq/operational_faq.md",
    "en/faq/performance_faq.md",
    "en/faq/product_faq.md",
    "en/faq/troubleshooting.md",
]


# ---- globs -----------------------------------------------------------------------------------------------


def test_glob_star_stays_in_one_folder_and_double_star_spans_any() -> None:
    paths = ["a.md", "en/a.md", "en/faq/b.md", "en/faq/deep/c.md", "en/x.json", "en/faq/b.mdx"]
    assert match_paths(paths, "en/faq/*.md") == ["en/faq/b.md"]
    assert match_paths(paths, "**/*.md") == ["a.md", "en/a.md", "en/faq/b.md", "en/faq/deep/c.md"]
    assert match_paths(paths, "en/**") == paths[1:]
    assert match_paths(paths, ALL_GLOB) == ["a.md", "en/a.md", "en/faq/b.md", "en/faq/deep/c.md", "en/x.json"]
    assert match_paths(paths, ["en/?.md", "en/[xy].json"]) == ["en/a.md", "en/x.json"]
    assert match_paths(paths, "en/[!a].*") == ["en/x.json"]
    assert match_paths(paths, "en/{faq/*,*}.md") == ["en/a.md", "en/faq/b.md"]
    assert match_paths(paths, "**/{b,c}.md") == ["en/faq/b.md", "en/faq/deep/c.md"]
    assert match_paths(paths, "/en/a.md") == ["en/a.md"]


def test_default_faq_glob_and_all_on_the_real_zip(docs_zip: Path) -> None:
    with open_corpus(docs_zip) as corpus:
        assert select(corpus, "en/faq/*.md") == FAQ
        everything = select(corpus, ALL_GLOB)
    assert len(everything) == 199
    assert sum(p.endswith(".md") for p in everything) == 196
    assert sum(p.endswith(".json") for p in everything) == 3


def test_glob_matching_nothing_says_how_many_files_there_are_and_suggests_all(docs_zip: Path) -> None:
    with open_corpus(docs_zip) as corpus, pytest.raises(SourceError) as err:
        select(corpus, "faq/*.md")
    message = str(err.value)
    assert "'faq/*.md' matched none of the 199 files" in message
    assert "--all" in message and "en/" in message
    assert "\n" not in message


# ---- folders and local zips ------------------------------------------------------------------------------


def test_folder_and_zip_give_the_same_files_and_bytes(docs_zip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    with zipfile.ZipFile(docs_zip) as zf:  # the test unzips; the loader never does
        zf.extractall(folder)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD.md").write_text("not docs")
    with open_corpus(folder) as from_folder, open_corpus(str(docs_zip)) as from_zip:
        assert isinstance(from_folder, FolderCorpus) and isinstance(from_zip, ZipCorpus)
        assert from_folder.paths() == from_zip.paths()
        for path in FAQ + ["en/Variables.json"]:
            assert from_folder.read(path) == from_zip.read(path)
            assert from_folder.size(path) == from_zip.size(path) == len(from_zip.read(path))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        open_corpus(tmp_path / "nowhere")
    assert "does not exist" in err.value.problem and "RAG_SOURCE" in err.value.fix


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty" / "en").mkdir(parents=True)
    with pytest.raises(SourceError) as err:
        open_corpus(tmp_path / "empty")
    assert "has no files" in err.value.problem


def test_empty_zip(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    empty.write_bytes(zip_bytes({}))
    with pytest.raises(SourceError, match="has no files"):
        open_corpus(empty)


def test_file_url_is_a_local_path(docs_zip: Path) -> None:
    with open_corpus(docs_zip.as_uri()) as corpus:
        assert len(corpus.paths()) == 199


def test_file_that_is_neither_folder_nor_zip(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(SourceError, match="neither a folder nor a .zip"):
        open_corpus(notes)


def test_truncated_zip(docs_bytes: bytes, tmp_path: Path) -> None:
    broken = tmp_path / "docs.zip"
    broken.write_bytes(docs_bytes[: len(docs_bytes) // 2])
    with pytest.raises(SourceError) as err:
        open_corpus(broken)
    assert "not a valid zip" in err.value.problem and "download it again" in err.value.fix


def test_corrupt_member_is_reported_when_read(docs_bytes: bytes, tmp_path: Path) -> None:
    broken = tmp_path / "docs.zip"
    broken.write_bytes(corrupt_copy(docs_bytes))
    with open_corpus(broken) as corpus, pytest.raises(SourceError, match="not a valid zip"):
        for path in corpus.paths():
            corpus.read(path)


@pytest.mark.parametrize(
    "member", ["../evil.txt", "en/../../evil.txt", "ABSOLUTE", "C:/evil.txt", "..\\evil.txt"]
)
def test_zip_with_escaping_member_paths_is_refused_and_nothing_is_written(
    tmp_path: Path, member: str
) -> None:
    target = tmp_path / "outside" / "evil.txt"
    if member == "ABSOLUTE":
        member = str(target)
    hostile = tmp_path / "zips" / "hostile.zip"
    hostile.parent.mkdir()
    hostile.write_bytes(zip_bytes({"en/ok.md": b"# ok\n", member: b"escaped\n"}))
    before = files_under(tmp_path) | files_under(tmp_path.parent)
    with pytest.raises(SourceError) as err:
        open_corpus(hostile)
    assert "unsafe member path" in err.value.problem
    assert files_under(tmp_path) | files_under(tmp_path.parent) == before
    assert not target.exists()


def test_unsafe_member_names() -> None:
    assert not unsafe_member("en/faq/a.md")
    assert not unsafe_member("en/..hidden/a.md")
    for bad in ("/etc/passwd", "\\x", "a/../../b", "..", "D:\\x", "a\0b"):
        assert unsafe_member(bad), bad


def test_hidden_and_macos_metadata_members_are_not_part_of_the_corpus(tmp_path: Path) -> None:
    archive = tmp_path / "docs.zip"
    archive.write_bytes(
        zip_bytes({"en/a.md": b"# A\n", "__MACOSX/en/._a.md": b"\0\1", "en/.DS_Store": b"\0", ".git/x": b"x"})
    )
    with open_corpus(archive) as corpus:
        assert corpus.paths() == ["en/a.md"]


# ---- URLs ------------------------------------------------------------------------------------------------


def test_url_is_downloaded_once_then_reused_without_network(docs_server: DocsServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    url = docs_server.url("docs.zip")
    with open_corpus(url, cache_dir=cache, progress=False) as corpus:
        assert len(select(corpus, ALL_GLOB)) == 199
        assert corpus.description == url
    assert docs_server.hits["/docs.zip"] == 1
    cached = cached_download_path(url, cache)
    assert cached.parent == cache / "downloads"
    assert files_under(cache) == {cached}  # no temporary file left behind

    with open_corpus(url, cache_dir=cache, progress=False) as corpus:
        assert select(corpus, "en/faq/*.md") == FAQ
    assert docs_server.hits["/docs.zip"] == 1  # the second call made no request


def test_progress_bar_goes_to_stderr_and_can_be_turned_off(
    docs_server: DocsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    download_zip(docs_server.url("docs.zip"), tmp_path / "a", progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "Downloading" in err
    download_zip(docs_server.url("docs.zip"), tmp_path / "b", progress=False)
    assert capsys.readouterr() == ("", "")


def test_partial_download_left_in_the_cache_is_never_used(
    docs_server: DocsServer, docs_bytes: bytes, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    url = docs_server.url("docs.zip")
    final = cached_download_path(url, cache)
    final.parent.mkdir(parents=True)
    leftover = final.parent / f".{final.name}.abc123.part"  # what an interrupted download leaves
    leftover.write_bytes(docs_bytes[:1000])
    path = download_zip(url, cache, progress=False)
    assert path == final and docs_server.hits["/docs.zip"] == 1
    assert final.read_bytes() == docs_bytes


def test_corrupt_cached_file_is_downloaded_again(
    docs_server: DocsServer, docs_bytes: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    url = docs_server.url("docs.zip")
    final = cached_download_path(url, cache)
    final.parent.mkdir(parents=True)
    for damaged in (docs_bytes[: len(docs_bytes) // 2], corrupt_copy(docs_bytes)):
        final.write_bytes(damaged)
        with caplog.at_level(logging.WARNING, logger="loaders.sources"):
            download_zip(url, cache, progress=False)
        assert final.read_bytes() == docs_bytes
        assert "downloading" in caplog.text
    assert docs_server.hits["/docs.zip"] == 2


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ("missing.zip", "HTTP 404"),
        ("truncated.zip", "not a valid zip"),
        ("short.zip", "download"),
        ("corrupt.zip", "not a valid zip"),
        ("evil.zip", "unsafe member path"),
        ("page.html", "not a valid zip"),
    ],
)
def test_failed_downloads_raise_and_leave_nothing_in_the_cache(
    docs_server: DocsServer, tmp_path: Path, route: str, problem: str
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(SourceError) as err:
        open_corpus(docs_server.url(route), cache_dir=cache, progress=False)
    assert problem in err.value.problem
    assert err.value.fix
    assert files_under(cache) == set()
    assert docs_server.hits[f"/{route}"] == 1


def test_short_read_is_reported_as_incomplete(docs_server: DocsServer, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        download_zip(docs_server.url("short.zip"), tmp_path, progress=False)
    assert "stopped early" in err.value.problem or "incomplete" in err.value.problem


def test_timeout_uses_download_timeout(docs_server: DocsServer, tmp_path: Path) -> None:
    """The slow route answers (with a good zip) only after SLOW_SECONDS: an error at all means the 0.3 s held."""
    with pytest.raises(SourceError) as err:
        open_corpus(docs_server.url("slow.zip"), cache_dir=tmp_path, download_timeout=0.3, progress=False)
    assert "timed out after 0.3 s" in err.value.problem
    assert "RAG_DOWNLOAD_TIMEOUT" in err.value.fix
    assert files_under(tmp_path) == set()


def test_connection_refused(refused_url: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        open_corpus(refused_url, cache_dir=tmp_path, download_timeout=5, progress=False)
    assert "connection refused" in err.value.problem
    assert files_under(tmp_path) == set()


def test_url_credentials_and_query_never_appear_in_errors(docs_server: DocsServer, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        open_corpus(docs_server.url("missing.zip?token=s3cret"), cache_dir=tmp_path, progress=False)
    assert "s3cret" not in str(err.value)
    assert display_url("https://user:pw@example.com:8443/a.zip?sig=x") == "https://example.com:8443/a.zip?…"


def test_url_without_cache_dir_uses_the_settings_cache(
    docs_server: DocsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "settings-cache"))
    with open_corpus(docs_server.url("docs.zip"), progress=False) as corpus:
        assert len(corpus.paths()) == 199
    assert [p.parent.name for p in files_under(tmp_path / "settings-cache")] == ["downloads"]
