"""The repository stands alone (issue 13): no file in it points outside it (the design that
used to live beside it is in docs/, the contract checker in tools/), and every page docs/
links to exists."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What a file of the repository may not name: the folder beside it that held the design, the
# checker and the seed, relatively or by an absolute path (which ends the same way).
OUTSIDE = re.compile(r"\.\./shared\b|\bshared/(design|tools|seed|research)\b")
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "var",
    "static",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "node_modules",  # npm's installs (examples/spa, tests/proof/oidc), not the repository's
}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".graphql", ".cfg", ".txt", ".sh", ".yml", ".yaml", ""}
DESIGN = ["architecture.md", "domain.md", "contract.graphql", "quality.md", "stack.md"]


def skipped(name: str) -> bool:
    return name in SKIPPED_DIRS or name.startswith(".import_linter")


def repository_files() -> list[Path]:
    """Every text file outside SKIPPED_DIRS; those folders are not entered at all (.venv and
    node_modules hold tens of thousands of files)."""
    found = []
    for directory, folders, names in os.walk(REPO):
        folders[:] = [name for name in folders if not skipped(name)]
        for name in names:
            path = Path(directory, name)
            if not skipped(name) and path.suffix in TEXT_SUFFIXES and path.is_file():
                found.append(path)
    return found


def test_no_file_points_outside_the_repository() -> None:
    files = repository_files()
    assert REPO / "Makefile" in files and REPO / ".ci" / "run" in files
    offenders = []
    for path in files:
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_design_is_in_docs_and_the_checker_in_tools() -> None:
    for name in DESIGN:
        assert (REPO / "docs" / name).stat().st_size > 1000, name
    assert (REPO / "tools" / "check_contract.py").is_file()


def test_links_between_docs_resolve() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []
