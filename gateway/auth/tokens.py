"""Access-token verification: who is calling, on whose behalf, allowed to do what.

Tokens are HelseID-shaped JWT access tokens (client credentials): signed by the issuer's key
from its JWKS, for this gateway's audience, with ``client_id``, ``scope`` and the caller's
organisation numbers. Everything a caller may do is decided from the verified ``Caller``;
nothing in an unverified token is looked at except the header fields needed to pick the key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import (
    BadSignatureError,
    InvalidKeyCurveError,
    InvalidKeyTypeError,
    JoseError,
    UnsupportedAlgorithmError,
)

from gateway.auth.jwks import HttpJwks, KeySource, KeySourceError, StaticJwks, VerifyKey, parse_jwks

__all__ = [
    "CERTIFICATE_CLIENT_PREFIX",
    "ORGNR_CHILD",
    "ORGNR_PARENT",
    "REJECTION_CODES",
    "SCOPE_CONSENT_READ",
    "SCOPE_INBOX",
    "SCOPE_OPS_ACT",
    "SCOPE_OPS_CONTENT",
    "SCOPE_OPS_READ",
    "SCOPE_SEND",
    "Caller",
    "HttpJwks",
    "KeySource",
    "KeySourceError",
    "StaticJwks",
    "TokenRejected",
    "TokenVerifier",
    "bearer_token",
]

log = logging.getLogger(__name__)

SCOPE_SEND = "ipgw/messages.send"  # a hospital/platform sends notices, plans, consents
SCOPE_INBOX = "ipgw/inbox"  # a KE reads and acknowledges its own inbox
SCOPE_CONSENT_READ = "ipgw/consent.read"  # authorised callers may read consents
SCOPE_OPS_READ = "ipgw/ops.read"  # operator: metadata
SCOPE_OPS_ACT = "ipgw/ops.act"  # operator: actions
SCOPE_OPS_CONTENT = "ipgw/ops.content"  # privileged operator: content
ORGNR_PARENT = "helseid://claims/client/claims/orgnr_parent"
ORGNR_CHILD = "helseid://claims/client/claims/orgnr_child"

REJECTION_CODES = frozenset(
    {
        "token-missing",
        "token-malformed",
        "token-bad-signature",
        "token-unknown-key",
        "token-wrong-issuer",
        "token-wrong-audience",
        "token-expired",
        "token-not-yet-valid",
        "token-wrong-algorithm",
        "issuer-unreachable",
        # bound to a client certificate (RFC 8705) that the request did not come with
        "token-unbound",
    }
)

#: how the clients let in by certificate are named; no token's client may be
CERTIFICATE_CLIENT_PREFIX = "mtls:"

#: asymmetric algorithms the verifier can be configured with; ``none`` and the HMAC family
#: never: with HS* a public key would become a shared secret anyone can sign with
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)

#: a real access token is a few kB; anything far larger is refused before it is parsed
MAX_TOKEN_CHARS = 16 * 1024


@dataclass(frozen=True)
class Caller:
    """A verified caller: the client system, who acts through it, and what it may do."""

    client_id: str
    #: the ``sub`` claim (for an operator: who acts); the client id when the token has none
    subject: str
    orgnr_parent: str | None
    orgnr_child: str | None
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def organisations(self) -> frozenset[str]:
        """The organisations the caller speaks for (parent and child orgnr, when present)."""
        return frozenset(o for o in (self.orgnr_parent, self.orgnr_child) if o is not None)


class TokenRejected(Exception):
    """A token that does not let its bearer in.

    ``code`` is one of ``REJECTION_CODES``; ``detail`` says why in words. Neither ever holds
    the token or a claim's value: these messages end up in logs and answers to callers.
    """

    def __init__(self, code: str, detail: str) -> None:
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class TokenVerifier:
    """Verifies access tokens against one issuer's published keys.

    Keys are cached for ``cache_seconds``. A token naming a key id the cache does not have
    causes one refetch (the issuer rotated its key), but fetches of any kind happen at most
    once per ``refetch_interval_seconds``, so a flood of made-up key ids cannot be turned
    against the issuer. When the issuer cannot be reached, keys already known keep working.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySource,
        cache_seconds: float = 300.0,
        leeway_seconds: float = 30.0,
        algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256"),
        refetch_interval_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        unsupported = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
        if unsupported or not algorithms:
            raise ValueError(f"algorithms must be among {sorted(SUPPORTED_ALGORITHMS)}")
        if not issuer or not audience:
            raise ValueError("issuer and audience must not be empty")
        self.issuer = issuer
        self.audience = audience
        self._source = keys
        self._cache_seconds = cache_seconds
        self._leeway = leeway_seconds
        self._algorithms = frozenset(algorithms)
        self._refetch_interval = refetch_interval_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._keys: dict[str, VerifyKey] = {}
        self._fetched_at: float | None = None  # monotonic time of the last good fetch
        self._attempted_at: float | None = None  # ... of the last finished fetch, good or not
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def verify(self, token: str, *, certificate_thumbprint: str | None = None) -> Caller:
        """The caller a valid token names. ``certificate_thumbprint``: the ``x5t#S256`` of the
        client certificate the request came with (gateway/auth/client_certs.py), the proof a
        certificate-bound token needs."""
        header = _read_header(token)
        alg, kid = self._algorithm_and_kid(header)
        key = await self._key(kid)
        if key.alg is not None and key.alg != alg:
            raise TokenRejected("token-wrong-algorithm", "the key is bound to another algorithm")
        claims = _verified_claims(token, key, alg)
        self._check_issuer_and_audience(claims)
        self._check_times(claims)
        return _caller(claims, certificate_thumbprint)

    # -- header

    def _algorithm_and_kid(self, header: dict[str, Any]) -> tuple[str, str]:
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise TokenRejected("token-malformed", "token header has no algorithm")
        if alg not in self._algorithms:
            raise TokenRejected("token-wrong-algorithm", "token algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("token-malformed", "token header has no key id")
        return alg, kid

    # -- keys

    async def _key(self, kid: str) -> VerifyKey:
        # A fetch in flight has not yet updated the rate-limit clock, so callers arriving
        # meanwhile also want a fetch and queue on the lock; the check is repeated there
        # because the call they waited for has fetched already.
        if self._fetch_wanted(kid):
            async with self._get_lock():
                if self._fetch_wanted(kid):
                    await self._fetch()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise TokenRejected("issuer-unreachable", "the issuer's keys cannot be fetched")
        raise TokenRejected("token-unknown-key", "token is signed with a key the issuer lacks")

    def _fetch_wanted(self, kid: str) -> bool:
        now = self._monotonic()
        if self._attempted_at is not None and now - self._attempted_at < self._refetch_interval:
            return False
        if self._fetched_at is None or now - self._fetched_at >= self._cache_seconds:
            return True
        return kid not in self._keys

    async def _fetch(self) -> None:
        try:
            keys = parse_jwks(await self._source.fetch())
        except Exception as e:
            # Keys already known stay in use: an issuer outage must not lock every caller out.
            log.warning(
                "fetching the issuer's keys failed (%s: %s); %d cached keys stay in use",
                type(e).__name__,
                e,
                len(self._keys),
            )
        else:
            if not keys:
                log.warning("the issuer's JWKS has no usable signing key")
            self._keys = keys
            self._fetched_at = self._monotonic()
        # only a finished fetch counts towards the rate limit, so a cancelled one is retried
        self._attempted_at = self._monotonic()

    def _get_lock(self) -> asyncio.Lock:
        # A lock belongs to one event loop; tests and ASGI portals may call from several.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        return self._lock

    # -- claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        exp = _number(claims, "exp", required=True)
        assert exp is not None
        if now >= exp + self._leeway:
            raise TokenRejected("token-expired", "token has expired")
        nbf = _number(claims, "nbf", required=False)
        if nbf is not None and nbf - self._leeway > now:
            raise TokenRejected("token-not-yet-valid", "token is not valid yet")
        iat = _number(claims, "iat", required=False)
        if iat is not None and iat - self._leeway > now:
            raise TokenRejected("token-not-yet-valid", "token claims to be issued in the future")

    def _check_issuer_and_audience(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise TokenRejected("token-wrong-issuer", "token is not from the configured issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.audience not in audiences:
            raise TokenRejected("token-wrong-audience", "token is not meant for this gateway")

    def __repr__(self) -> str:
        return f"TokenVerifier(issuer={self.issuer!r}, audience={self.audience!r})"


def bearer_token(authorization: str | None) -> str:
    """The token in an ``Authorization: Bearer ...`` header value.

    Other schemes are refused rather than ignored: a DPoP-bound token (``DPoP ...``) needs
    its proof checked, which this gateway does not do yet, so it must not pass as a bearer.
    """
    if authorization is None or not authorization.strip():
        raise TokenRejected("token-missing", "no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenRejected("token-malformed", "only Bearer tokens are accepted")
    if not token.strip():
        raise TokenRejected("token-missing", "no token after Bearer")
    return token.strip()


def _read_header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token.strip():
        raise TokenRejected("token-missing", "no token")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("token-malformed", "token is too long")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0]:
        raise TokenRejected("token-malformed", "token is not a signed JWT")
    try:
        header = json.loads(_b64url(parts[0]))
    except (ValueError, binascii.Error):
        raise TokenRejected("token-malformed", "token header cannot be read") from None
    if not isinstance(header, dict):
        raise TokenRejected("token-malformed", "token header is not a JSON object")
    return header


def _b64url(segment: str) -> bytes:
    return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)


def _verified_claims(token: str, key: VerifyKey, alg: str) -> dict[str, Any]:
    try:
        payload = jws.deserialize_compact(token, key.key, algorithms=[alg]).payload
    except BadSignatureError:
        raise TokenRejected("token-bad-signature", "token signature does not verify") from None
    except (UnsupportedAlgorithmError, InvalidKeyTypeError, InvalidKeyCurveError):
        raise TokenRejected(
            "token-wrong-algorithm", "token algorithm does not fit the key"
        ) from None
    except (JoseError, ValueError, TypeError):
        raise TokenRejected("token-malformed", "token cannot be read") from None
    try:
        claims = json.loads(payload)
    except ValueError:
        raise TokenRejected("token-malformed", "token claims cannot be read") from None
    if not isinstance(claims, dict):
        raise TokenRejected("token-malformed", "token claims are not a JSON object")
    return claims


def _number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenRejected("token-malformed", f"token has no '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected("token-malformed", f"token claim '{name}' is not a number")
    return float(value)


def _caller(claims: dict[str, Any], certificate_thumbprint: str | None = None) -> Caller:
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise TokenRejected("token-malformed", "token has no 'client_id' claim")
    if client_id.startswith(CERTIFICATE_CLIENT_PREFIX):
        # the names of clients let in by certificate (gateway/auth/client_certs.py): a token
        # client so named would share their receipts and rate limit
        raise TokenRejected("token-malformed", "token client id is one reserved for certificates")
    if "cnf" in claims:
        _check_binding(claims["cnf"], certificate_thumbprint)
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise TokenRejected("token-malformed", "token claim 'sub' is not a string")
    return Caller(
        client_id=client_id,
        subject=sub or client_id,
        orgnr_parent=_orgnr(claims, ORGNR_PARENT),
        orgnr_child=_orgnr(claims, ORGNR_CHILD),
        scopes=_scopes(claims.get("scope")),
    )


def _check_binding(cnf: Any, certificate_thumbprint: str | None) -> None:
    """A sender-constrained token is worth only with its proof; taken as a plain bearer token,
    whoever copied it could use it (RFC 9449 § 7.2, RFC 8705 § 3). The proof taken here is the
    client certificate the token is bound to (``x5t#S256``); DPoP proofs (``jkt``) are not."""
    bound_to = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if not isinstance(bound_to, str) or not bound_to or len(cnf) != 1:
        # a confirmation method not checked here (DPoP's jkt, beside x5t#S256 or alone)
        # would be a proof skipped
        raise TokenRejected("token-malformed", "a sender-constrained token without its proof")
    if certificate_thumbprint is None:
        raise TokenRejected("token-unbound", "a certificate-bound token without its certificate")
    if not hmac.compare_digest(bound_to.encode(), certificate_thumbprint.encode()):
        raise TokenRejected("token-unbound", "the token is bound to another certificate")


def _orgnr(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TokenRejected("token-malformed", "token organisation number is not a string")
    return value


def _scopes(value: Any) -> frozenset[str]:
    # RFC 8693/9068 say a space-separated string; HelseID sends a JSON list. Both are read.
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return frozenset(s for s in value if s)
    raise TokenRejected("token-malformed", "token claim 'scope' is neither a string nor a list")
