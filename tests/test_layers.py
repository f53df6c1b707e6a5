"""The import-linter contracts (pyproject.toml, run by `make lint`) keep up with the code:
a new gql module is either public plugin API or forbidden to plugins."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import gql

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_API = {"gql.policy", "gql.hookspecs", "gql.events"}  # and gql itself, which re-exports them


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_every_non_public_gql_module_is_forbidden_to_policies() -> None:
    modules = {f"gql.{m.name}" for m in pkgutil.iter_modules(gql.__path__)}
    assert modules >= PUBLIC_API
    forbidden = set(contracts()["policies-public-api"]["forbidden_modules"])
    assert forbidden == modules - PUBLIC_API


def test_the_layer_contracts_are_there() -> None:
    found = contracts()
    assert found["layers"]["layers"] == ["gql.api", "gql.domain", "gql.store"]
    assert set(found["api-not-store"]["forbidden_modules"]) >= {"gql.store", "tortoise"}
    storage = found["storage-no-orm-no-domain"]
    assert storage["source_modules"] == ["gql.files"]
    assert set(storage["forbidden_modules"]) >= {"tortoise", "gql.store", "gql.domain"}
    vocabulary = found["vocabulary-leaf"]
    assert vocabulary["source_modules"] == ["gql.vocabulary"]
    assert set(vocabulary["forbidden_modules"]) >= {"tortoise", "gql.store", "gql.domain"}
