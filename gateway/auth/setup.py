"""The verifier the gateway runs with: the real issuer's when configured, else the dev one."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from gateway.auth.dev_issuer import DEV_ISSUER, DevIssuer
from gateway.auth.tokens import HttpJwks, TokenVerifier
from gateway.config import Settings

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class AuthConfigError(ValueError):
    """The IPGW_AUTH_* settings do not make a usable configuration."""


def verifier_for(settings: Settings) -> tuple[TokenVerifier, DevIssuer | None]:
    """The token verifier, and the development issuer when that is what it trusts.

    Without IPGW_AUTH_ISSUER the gateway trusts only the development issuer whose key is in
    the data directory; there is no way to switch verification off.
    """
    if settings.auth_issuer:
        url = settings.auth_jwks_url
        if not url:
            raise AuthConfigError(
                "IPGW_AUTH_ISSUER is set but IPGW_AUTH_JWKS_URL is not: the gateway needs the "
                "issuer's JWKS address to check token signatures"
            )
        _check_jwks_url(url)
        verifier = TokenVerifier(
            issuer=settings.auth_issuer, audience=settings.auth_audience, keys=HttpJwks(url)
        )
        return verifier, None
    if settings.auth_jwks_url:
        raise AuthConfigError(
            "IPGW_AUTH_JWKS_URL is set but IPGW_AUTH_ISSUER is not: set both to use a real "
            "issuer, or neither to use the development issuer"
        )
    dev = DevIssuer.load_or_create(settings.data_dir, DEV_ISSUER)
    log.warning(
        "no IPGW_AUTH_ISSUER: accepting tokens from the development issuer (key in %s)",
        settings.data_dir,
    )
    verifier = TokenVerifier(
        issuer=DEV_ISSUER, audience=settings.auth_audience, keys=dev.key_source()
    )
    return verifier, dev


def _check_jwks_url(url: str) -> None:
    # The JWKS decides whom the gateway trusts: over plain HTTP anyone on the path could
    # substitute their own keys. Plain HTTP is allowed on the loopback only (tests, sidecars).
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise AuthConfigError("IPGW_AUTH_JWKS_URL must be an https:// address (http only on loopback)")
