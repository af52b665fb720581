"""A local token issuer for development, the demo and tests.

It exists so that nothing runs without authentication: the demo's simulated hospital and
KEs, and the tests, get real signed tokens that go through the same verifier as HelseID's.
Its private key lives in the data directory; whoever can read that file can mint tokens,
which is why it is created owner-only and why a real issuer (IPGW_AUTH_ISSUER) replaces it
in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.jwk import RSAKey

from gateway.auth.tokens import (
    ORGNR_CHILD,
    ORGNR_PARENT,
    SCOPE_INBOX,
    SCOPE_OPS_ACT,
    SCOPE_OPS_CONTENT,
    SCOPE_OPS_READ,
    SCOPE_SEND,
    StaticJwks,
)

#: the ``iss`` of development tokens; deliberately not a URL, so it cannot be mistaken for
#: (or configured as) a real issuer
DEV_ISSUER = "ipgw-dev-issuer"
KEY_FILE = "dev-issuer-key.pem"
ALGORITHM = "RS256"

#: the scopes of the usual kinds of caller, for ``ipgw token --as`` and the demo
PRESETS: dict[str, tuple[str, ...]] = {
    "hospital": (SCOPE_SEND,),
    "ke": (SCOPE_INBOX,),
    "viewer": (SCOPE_OPS_READ,),
    "operator": (SCOPE_OPS_READ, SCOPE_OPS_ACT),
    "privileged": (SCOPE_OPS_READ, SCOPE_OPS_ACT, SCOPE_OPS_CONTENT),
}


class DevIssuer:
    """Mints HelseID-shaped access tokens with a key kept in the data directory."""

    def __init__(self, key: RSAKey, issuer: str = DEV_ISSUER) -> None:
        if not key.is_private:
            raise ValueError("the development issuer needs a private key")
        self._key = key
        self.issuer = issuer
        #: RFC 7638 thumbprint: stable for the key, so tokens survive a restart
        self.kid = key.thumbprint()

    @classmethod
    def load_or_create(cls, data_dir: Path, issuer: str = DEV_ISSUER) -> DevIssuer:
        """The issuer whose key is in ``data_dir``; the key is made on first use.

        Tokens minted earlier (by ``ipgw token`` or another process) must keep verifying
        after a restart, so the key is kept rather than made fresh each start.
        """
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            _create_key_file(path)
        try:
            key = RSAKey.import_key(path.read_bytes())
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path} is not an RSA private key in PEM") from e
        return cls(key, issuer)

    def jwks(self) -> dict[str, Any]:
        """The public half only, as the issuer would publish it."""
        public = self._key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def key_source(self) -> StaticJwks:
        return StaticJwks(self.jwks())

    def mint(
        self,
        *,
        client_id: str,
        audience: str,
        scopes: Iterable[str],
        orgnr_parent: str | None = None,
        orgnr_child: str | None = None,
        subject: str | None = None,
        lifetime_seconds: int = 3600,
        not_before: float | None = None,
        issued_at: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """An access token shaped like HelseID's (``scope`` as a list, orgnr claims).

        ``extra`` is merged last, so tests can replace any claim with a wrong one.
        """
        scope_list = list(dict.fromkeys(scopes))
        for s in scope_list:
            if not s or s != s.strip() or len(s.split()) != 1:
                raise ValueError("a scope is one word without spaces")
        if not client_id:
            raise ValueError("client_id must not be empty")
        if lifetime_seconds <= 0:
            raise ValueError("lifetime_seconds must be positive")
        iat = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject or client_id,
            "client_id": client_id,
            "scope": scope_list,
            "iat": iat,
            "nbf": int(iat if not_before is None else not_before),
            "exp": iat + lifetime_seconds,
            "jti": uuid.uuid4().hex,
        }
        if orgnr_parent is not None:
            claims[ORGNR_PARENT] = orgnr_parent
        if orgnr_child is not None:
            claims[ORGNR_CHILD] = orgnr_child
        claims.update(extra or {})
        return self.sign(claims)

    def sign(self, claims: Mapping[str, Any], *, header: Mapping[str, Any] | None = None) -> str:
        """Any claim set signed with the issuer's key (for tests that need odd tokens).

        ``header`` entries replace the usual ones; a ``None`` value leaves that entry out.
        """
        fields = {"alg": ALGORITHM, "kid": self.kid, "typ": "at+jwt", **(header or {})}
        protected = {k: v for k, v in fields.items() if v is not None}
        payload = json.dumps(dict(claims), separators=(",", ":"))
        return jws.serialize_compact(protected, payload, self._key, algorithms=[protected["alg"]])

    def __repr__(self) -> str:
        return f"DevIssuer(issuer={self.issuer!r}, kid={self.kid!r})"


def _create_key_file(path: Path) -> None:
    """Write a new key owner-only, complete or not at all.

    Written under a private name first and then linked into place: ``link`` fails if the
    file exists, so two processes starting together agree on one key, and neither can read
    a half-written one.
    """
    pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        # another process may have made it first: then theirs is used
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink()
