"""`certgraph persisted-queries build|check`: manifests from .graphql files and manifests,
validated against the schema, written sorted by hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gql.api.persisted import document_hash, read_manifest
from gql.cli import EXIT_USAGE, main

VIEWER = (
    "query Viewer {\n  viewer {\n    ...Who\n  }\n}\n\nfragment Who on User {\n  id\n  name\n}\n"
)
SIMPLE = "query Simple { viewer { id } }\n"


def test_build_merges_files_and_manifests_sorted_by_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "viewer.graphql").write_text(VIEWER)
    (tmp_path / "two.graphql").write_text(
        "query A { viewer { ...Who } }\nquery B { viewer { id } }\nfragment Who on User { id }\n"
    )
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": document_hash(SIMPLE), "body": SIMPLE, "name": "S", "type": "query"}],
    }
    (tmp_path / "apollo.json").write_text(json.dumps(apollo))
    out = tmp_path / "manifest.json"
    files = [str(tmp_path / name) for name in ("viewer.graphql", "two.graphql", "apollo.json")]

    assert main(["persisted-queries", "build", *files, "--out", str(out)]) == 0
    assert "4 document(s)" in capsys.readouterr().out
    text = out.read_text()
    manifest = read_manifest(text, "out")
    assert manifest[document_hash(VIEWER)] == VIEWER  # one operation: the file's exact text
    assert manifest[document_hash(SIMPLE)] == SIMPLE
    split = sorted(body for body in manifest.values() if body not in (VIEWER, SIMPLE))
    assert split == [
        "query A {\n  viewer {\n    ...Who\n  }\n}\n\nfragment Who on User {\n  id\n}",
        "query B {\n  viewer {\n    id\n  }\n}",
    ]
    assert list(json.loads(text)) == sorted(manifest)

    # Building again into the same manifest keeps what it holds.
    (tmp_path / "more.graphql").write_text("query More { viewer { name } }")
    assert (
        main(["persisted-queries", "build", str(tmp_path / "more.graphql"), "--out", str(out)]) == 0
    )
    assert len(read_manifest(out.read_text(), "out")) == 5
    assert main(["persisted-queries", "check", str(out)]) == 0


def test_build_refuses_a_document_the_schema_does_not_accept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.graphql").write_text(SIMPLE)
    (tmp_path / "bad.graphql").write_text("query Bad { viewer { shoeSize } }")
    out = tmp_path / "manifest.json"
    argv = [
        "persisted-queries",
        "build",
        str(tmp_path / "ok.graphql"),
        str(tmp_path / "bad.graphql"),
    ]
    assert main([*argv, "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Bad" in err and "shoeSize" in err and "not written" in err
    assert not out.exists()

    (tmp_path / "broken.graphql").write_text("query {")
    assert main(
        ["persisted-queries", "build", str(tmp_path / "broken.graphql"), "--out", str(out)]
    ) == (EXIT_USAGE)
    assert "broken.graphql" in capsys.readouterr().err


def test_check_fails_on_a_document_the_schema_no_longer_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = "query Stale { viewer { removedField } }"
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({document_hash(SIMPLE): SIMPLE, document_hash(stale): stale}))
    assert main(["persisted-queries", "check", str(manifest)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Stale" in err and "removedField" in err and "no longer accepts" in err

    manifest.write_text(json.dumps({"0" * 64: SIMPLE}))
    assert main(["persisted-queries", "check", str(manifest)]) == EXIT_USAGE
    assert "is not the sha256" in capsys.readouterr().err


def test_serve_refuses_to_start_with_a_bad_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gql.settings import get_settings

    monkeypatch.setenv("CERTGRAPH_PERSISTED_QUERIES_ONLY", "true")
    monkeypatch.setenv("CERTGRAPH_PERSISTED_QUERIES_FILE", str(tmp_path / "missing.json"))
    get_settings.cache_clear()
    try:
        assert main(["serve", "--port", "1"]) == EXIT_USAGE
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "CERTGRAPH_PERSISTED_QUERIES_FILE: cannot read" in err and "missing.json" in err
