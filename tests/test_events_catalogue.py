"""docs/events.md is the catalogue of events: one section per type, with the JSON Schema of its
`data` exactly as gql/events.py produces it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gql.events import EVENT_TYPES, catalogue
from gql.hookspecs import CertgraphSpec

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"
SECTION = re.compile(r"^### `([a-z_]+)`\n(.*?)^```json\n(.*?)^```$", re.S | re.M)


def documented() -> dict[str, dict[str, object]]:
    return {m.group(1): json.loads(m.group(3)) for m in SECTION.finditer(DOC.read_text())}


def test_every_event_type_is_documented_with_its_schema() -> None:
    schemas = documented()
    assert sorted(schemas) == sorted(EVENT_TYPES)
    expected = catalogue()
    for name, schema in schemas.items():
        assert schema == expected[name], f"docs/events.md: the schema of {name} is out of date"


def test_each_section_says_what_the_class_says() -> None:
    text = DOC.read_text()
    for name, cls in EVENT_TYPES.items():
        summary = " ".join((cls.__doc__ or "").split())
        assert f"### `{name}`\n\n{summary}\n" in text


def test_the_hook_names_every_event_type() -> None:
    hook_doc = " ".join((CertgraphSpec.certgraph_event.__doc__ or "").split())
    for name in EVENT_TYPES:
        assert f"``{name}``" in hook_doc
