"""The docs keep up with the code: every CERTGRAPH_* variable the code reads is documented, and
README's configuration table lists only variables the code reads. (Hooks: tests/test_plugins.py.)"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIABLE = re.compile(r"\bCERTGRAPH_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def variables_in_code() -> dict[str, str]:
    """Each CERTGRAPH_* name in gql/ and plugins/, with the first file that names it."""
    found: dict[str, str] = {}
    for package in ("gql", "plugins"):
        for path in sorted((REPO / package).rglob("*.py")):
            for name in VARIABLE.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, str(path.relative_to(REPO)))
    return found


def docs_text() -> str:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def test_the_code_reads_the_variables_this_test_knows_of() -> None:
    assert {"CERTGRAPH_DATABASE_URL", "CERTGRAPH_DATA_DIR"} <= variables_in_code().keys()


def test_every_variable_the_code_reads_is_documented() -> None:
    docs = docs_text()
    missing = {
        name: where
        for name, where in variables_in_code().items()
        if not re.search(rf"\b{name}\b", docs)
    }
    assert missing == {}, f"not in README.md or docs/*.md: {missing}"


def test_the_readme_configuration_table_lists_only_variables_the_code_reads() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(CERTGRAPH_\w+)` \|", readme, re.M))
    assert table, "README.md's configuration table was not found"
    assert table - variables_in_code().keys() == set()
