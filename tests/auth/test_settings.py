"""The CERTGRAPH_OIDC_* settings: OIDC is off without an issuer; an issuer needs an audience,
https (http only on a loopback host), and only asymmetric algorithms may be allowed."""

from __future__ import annotations

import pytest

from gql.oidc import OidcConfig, OidcVerifier
from gql.settings import OIDC_ALGORITHMS, SettingsError, load_settings


def test_unset_issuer_means_oidc_off() -> None:
    settings = load_settings({})
    assert settings.oidc_issuer is None
    assert OidcConfig.from_settings(settings) is None
    assert OidcVerifier.from_settings(settings) is None


def test_a_full_configuration() -> None:
    settings = load_settings(
        {
            "CERTGRAPH_OIDC_ISSUER": "https://login.example.com/realms/staff",
            "CERTGRAPH_OIDC_AUDIENCE": "certgraph",
            "CERTGRAPH_OIDC_ROLES_CLAIM": "realm_access.roles",
            "CERTGRAPH_OIDC_ADMIN_ROLE": "cg-admin",
            "CERTGRAPH_OIDC_MANAGER_ROLE": "cg-manager",
            "CERTGRAPH_OIDC_LEEWAY_SECONDS": "30",
            "CERTGRAPH_OIDC_ALGORITHMS": "RS256, ES256",
        }
    )
    assert OidcConfig.from_settings(settings) == OidcConfig(
        issuer="https://login.example.com/realms/staff",
        audience="certgraph",
        algorithms=("RS256", "ES256"),
        leeway_seconds=30,
        roles_claim="realm_access.roles",
        admin_role="cg-admin",
        manager_role="cg-manager",
    )
    verifier = OidcVerifier.from_settings(settings)
    assert verifier is not None
    assert verifier.keys.discovery_url == (
        "https://login.example.com/realms/staff/.well-known/openid-configuration"
    )


def test_defaults() -> None:
    settings = load_settings(
        {"CERTGRAPH_OIDC_ISSUER": "https://tenant.auth0.com/", "CERTGRAPH_OIDC_AUDIENCE": "api"}
    )
    config = OidcConfig.from_settings(settings)
    assert config is not None
    assert (config.roles_claim, config.admin_role, config.manager_role) == (
        "roles",
        "certgraph-admin",
        "certgraph-manager",
    )
    assert config.leeway_seconds == 60
    assert config.algorithms == OIDC_ALGORITHMS
    # a trailing slash (Auth0's issuers have one) is not doubled
    assert config.discovery_url == "https://tenant.auth0.com/.well-known/openid-configuration"


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:8080/realms/x",
        "http://localhost:9000",
        "http://[::1]:9000/",
        "http://127.0.0.2",
        "https://accounts.google.com",
    ],
)
def test_accepted_issuers(issuer: str) -> None:
    settings = load_settings({"CERTGRAPH_OIDC_ISSUER": issuer, "CERTGRAPH_OIDC_AUDIENCE": "a"})
    assert settings.oidc_issuer == issuer


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        ("http://login.example.com", "http:// is accepted only on a loopback host"),
        ("http://10.0.0.5", "http:// is accepted only on a loopback host"),
        ("http://localhost.example.com", "http:// is accepted only on a loopback host"),
        ("ftp://login.example.com", "must be the provider's https:// issuer URL"),
        ("login.example.com", "must be the provider's https:// issuer URL"),
        ("https://login.example.com/?x=1", "without a query or fragment"),
    ],
)
def test_refused_issuers(issuer: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"CERTGRAPH_OIDC_ISSUER": issuer, "CERTGRAPH_OIDC_AUDIENCE": "a"})
    assert str(caught.value).startswith("CERTGRAPH_OIDC_ISSUER: ")
    assert problem in str(caught.value)


def test_an_issuer_needs_an_audience() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"CERTGRAPH_OIDC_ISSUER": "https://login.example.com"})
    assert str(caught.value).startswith("CERTGRAPH_OIDC_AUDIENCE: ")
    assert "must be set with CERTGRAPH_OIDC_ISSUER" in str(caught.value)


@pytest.mark.parametrize("algorithms", ["HS256", "RS256,none", "RS256,HS512", "rs256"])
def test_only_asymmetric_algorithms(algorithms: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "CERTGRAPH_OIDC_ISSUER": "https://login.example.com",
                "CERTGRAPH_OIDC_AUDIENCE": "a",
                "CERTGRAPH_OIDC_ALGORITHMS": algorithms,
            }
        )
    assert str(caught.value).startswith("CERTGRAPH_OIDC_ALGORITHMS: ")
    assert "not allowed" in str(caught.value)


def test_a_leeway_beyond_ten_minutes_is_refused() -> None:
    with pytest.raises(SettingsError, match="CERTGRAPH_OIDC_LEEWAY_SECONDS"):
        load_settings({"CERTGRAPH_OIDC_LEEWAY_SECONDS": "3600"})


def test_an_issuer_longer_than_the_table_holds_is_refused() -> None:
    issuer = "https://login.example.com/" + "x" * 500
    with pytest.raises(SettingsError, match=r"CERTGRAPH_OIDC_ISSUER: .*at most 500 characters"):
        load_settings({"CERTGRAPH_OIDC_ISSUER": issuer, "CERTGRAPH_OIDC_AUDIENCE": "a"})
