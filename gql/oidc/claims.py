"""Who a verified token names: issuer and subject, e-mail, name, and the role its roles claim
grants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gql.vocabulary import Role


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified token's person. `role` is what the roles claim grants (ADMIN or MANAGER),
    None when it names neither role: then the stored role stands."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    role: Role | None


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim named `path`; when there is none and the name has dots, the claim at that
    nested path (Keycloak's `realm_access.roles`, `resource_access.<client>.roles`). A
    top-level claim whose name has dots (Auth0's `https://example.com/roles`) wins."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def role_names(value: Any) -> frozenset[str]:
    """A roles claim as a set of names: a JSON list of strings, or one space-separated string
    (as OAuth's `scope`); anything else holds no role."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def granted_role(names: frozenset[str], *, admin_role: str, manager_role: str) -> Role | None:
    """ADMIN when the admin role is there (whatever else is), else MANAGER for the manager
    role, else None."""
    if admin_role in names:
        return Role.ADMIN
    if manager_role in names:
        return Role.MANAGER
    return None


def is_true(value: Any) -> bool:
    """`email_verified` as providers send it: JSON true (some send the string "true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def display_name(claims: Mapping[str, Any]) -> str | None:
    """`name`, else `given_name family_name`, else `preferred_username`; None without any."""
    name = claims.get("name")
    if isinstance(name, str) and name.strip():
        return name
    parts = [claims.get("given_name"), claims.get("family_name")]
    joined = " ".join(p for p in parts if isinstance(p, str) and p.strip())
    if joined:
        return joined
    username = claims.get("preferred_username")
    return username if isinstance(username, str) and username.strip() else None


def identity_of(
    claims: Mapping[str, Any], *, roles_claim: str, admin_role: str, manager_role: str
) -> Identity:
    """The identity of verified claims (`iss` and `sub` are known to be strings)."""
    email = claims.get("email")
    return Identity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) and email.strip() else None,
        email_verified=is_true(claims.get("email_verified")),
        name=display_name(claims),
        role=granted_role(
            role_names(claim_at(claims, roles_claim)),
            admin_role=admin_role,
            manager_role=manager_role,
        ),
    )
