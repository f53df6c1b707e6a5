"""What the verifier checks, taken from the settings once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gql.settings import Settings

WELL_KNOWN = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    leeway_seconds: int = 60
    roles_claim: str = "roles"
    admin_role: str = "certgraph-admin"
    manager_role: str = "certgraph-manager"

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The configuration of `settings`; None when CERTGRAPH_OIDC_ISSUER is unset (the
        settings validation has made sure an audience comes with an issuer)."""
        if settings.oidc_issuer is None or settings.oidc_audience is None:
            return None
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            algorithms=tuple(settings.oidc_algorithms),
            leeway_seconds=settings.oidc_leeway_seconds,
            roles_claim=settings.oidc_roles_claim,
            admin_role=settings.oidc_admin_role,
            manager_role=settings.oidc_manager_role,
        )

    @property
    def discovery_url(self) -> str:
        """OpenID Connect Discovery 1.0 §4: the issuer (less a trailing slash) + the path."""
        return self.issuer.rstrip("/") + WELL_KNOWN
