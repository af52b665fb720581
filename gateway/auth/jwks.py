"""Where the issuer's public keys come from, and which of them the gateway will trust.

The verifier never takes a key from the token itself (``jwk``, ``jku``, ``x5u`` headers):
only keys published by the configured issuer count, so a forged token cannot bring its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from joserfc import jwk
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

log = logging.getLogger(__name__)

#: members of a JWK that belong to the private key; dropped before import so the verifier
#: never holds signing material, even if a key source publishes it by mistake
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

#: RSA keys below this are refused (NIST and HelseID both require at least 2048 bits)
MIN_RSA_BITS = 2048


class KeySourceError(Exception):
    """The key source could not produce a JWKS document (network, HTTP status, content)."""


class KeySource(Protocol):
    """Where the JWKS comes from: the issuer's URL, or a document held in memory."""

    async def fetch(self) -> dict[str, Any]:
        """A JWKS document ``{"keys": [...]}``; raises on failure (any exception)."""
        ...


class HttpJwks:
    """The issuer's published JWKS, fetched on demand (the verifier does the caching)."""

    def __init__(
        self, url: str, *, timeout_seconds: float = 5.0, max_bytes: int = 512 * 1024
    ) -> None:
        self.url = url
        self._timeout = timeout_seconds
        self._max_bytes = max_bytes

    async def fetch(self) -> dict[str, Any]:
        # Redirects are not followed: the configured URL is the trust anchor, and a redirect
        # to somewhere else should be noticed by the operator, not silently obeyed.
        try:
            async with (
                httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client,
                client.stream("GET", self.url, headers={"Accept": "application/json"}) as r,
            ):
                if r.status_code != 200:
                    raise KeySourceError(f"JWKS endpoint answered HTTP {r.status_code}")
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise KeySourceError("JWKS document is larger than allowed")
        except httpx.HTTPError as e:
            raise KeySourceError(f"JWKS endpoint unreachable ({type(e).__name__})") from e
        try:
            doc = json.loads(bytes(body))
        except ValueError:
            raise KeySourceError("JWKS endpoint answered something that is not JSON") from None
        if not isinstance(doc, dict):
            raise KeySourceError("JWKS document is not a JSON object")
        return doc

    def __repr__(self) -> str:
        return f"HttpJwks({self.url!r})"


class StaticJwks:
    """A JWKS held in memory: the development issuer's, or a pinned set of keys."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = {"keys": [dict(k) for k in document.get("keys", [])]}

    async def fetch(self) -> dict[str, Any]:
        return {"keys": [dict(k) for k in self._document["keys"]]}


@dataclass(frozen=True)
class VerifyKey:
    """One trusted public key, and the algorithm its publisher bound it to (if any)."""

    key: RSAKey | ECKey
    alg: str | None


def parse_jwks(document: Any) -> dict[str, VerifyKey]:
    """The usable signing keys of a JWKS, by ``kid``.

    A key that cannot be used (no kid, encryption key, unknown type, too small, broken) is
    skipped rather than failing the whole set: one odd key in the issuer's set must not stop
    the others from working.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySourceError("not a JWKS document (no 'keys' list)")
    keys: dict[str, VerifyKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            log.warning("JWKS key without a kid skipped")
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC"):
            continue
        public = {k: v for k, v in entry.items() if k not in PRIVATE_MEMBERS}
        try:
            key = jwk.import_key(public)
        except (JoseError, ValueError, TypeError):
            log.warning("JWKS key %s skipped: it cannot be read", kid)
            continue
        if not isinstance(key, RSAKey | ECKey):  # pragma: no cover - kty filtered above
            continue
        if isinstance(key, RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
            log.warning("JWKS key %s skipped: RSA key shorter than %d bits", kid, MIN_RSA_BITS)
            continue
        if kid in keys:
            log.warning("JWKS has key id %s twice; the first is used", kid)
            continue
        alg = entry.get("alg")
        keys[kid] = VerifyKey(key, alg if isinstance(alg, str) else None)
    return keys
