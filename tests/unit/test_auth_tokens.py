"""Token verification (issue 8): every rule refused on its own, key rotation and its rate
limit, the development issuer, ``ipgw token``, and a real HTTP JWKS endpoint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import stat
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import RSAKey
from typer.testing import CliRunner

from gateway.auth import (
    DEV_ISSUER,
    ORGNR_CHILD,
    ORGNR_PARENT,
    SCOPE_INBOX,
    SCOPE_OPS_ACT,
    SCOPE_OPS_CONTENT,
    SCOPE_OPS_READ,
    SCOPE_SEND,
    Caller,
    DevIssuer,
    HttpJwks,
    TokenRejected,
    TokenVerifier,
    bearer_token,
)
from gateway.auth.dev_issuer import KEY_FILE
from gateway.auth.setup import AuthConfigError, verifier_for
from gateway.cli import app
from gateway.config import Settings

AUD = "ip-gateway"
NOW = 1_800_000_000.0
ORGNR = "974633574"  # stands for what must never appear in a message
SUB = "operator-sub-7731"


class Clock:
    """Wall time for the claims, monotonic time for the key cache; both steered by tests."""

    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 1000.0


class Source:
    """A key source that counts its fetches and can be switched to another set or to fail."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        self.failing = False
        self.delay = 0.0

    async def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            raise OSError("connection refused")
        copy: dict[str, Any] = json.loads(json.dumps(self.document))
        return copy


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.load_or_create(tmp_path_factory.mktemp("dev"), DEV_ISSUER)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    """Another key: what an attacker signs with."""
    return DevIssuer.load_or_create(tmp_path_factory.mktemp("other"), DEV_ISSUER)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(issuer: DevIssuer) -> Source:
    return Source(issuer.jwks())


def make_verifier(source: Source, clock: Clock, **kw: Any) -> TokenVerifier:
    return TokenVerifier(
        issuer=DEV_ISSUER,
        audience=AUD,
        keys=source,
        clock=lambda: clock.wall,
        monotonic=lambda: clock.mono,
        **kw,
    )


@pytest.fixture
def verifier(source: Source, clock: Clock) -> TokenVerifier:
    return make_verifier(source, clock)


def mint(issuer: DevIssuer, **kw: Any) -> str:
    args: dict[str, Any] = {
        "client_id": "hf-molde",
        "audience": AUD,
        "scopes": [SCOPE_SEND],
        "orgnr_parent": ORGNR,
        "issued_at": NOW,
    }
    return issuer.mint(**(args | kw))


def claims(**kw: Any) -> dict[str, Any]:
    base = {
        "iss": DEV_ISSUER,
        "aud": AUD,
        "sub": SUB,
        "client_id": "hf-molde",
        "scope": [SCOPE_SEND],
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 600,
        ORGNR_PARENT: ORGNR,
    }
    return {k: v for k, v in (base | kw).items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(body).encode()), b64(signature)]
    )


async def rejected(verifier: TokenVerifier, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        await verifier.verify(token)
    return info.value


def assert_discreet(error: TokenRejected, token: str) -> None:
    """Neither the message nor the traceback holds the token, a part of it, or a claim."""
    texts = [str(error), repr(error), error.detail, "".join(traceback.format_exception(error))]
    secrets = [p for p in [token, *token.split(".")] if len(p) > 8] + [ORGNR, SUB, "hf-molde"]
    for text in texts:
        for secret in secrets:
            assert secret not in text


# -- the happy path


async def test_a_good_token_gives_the_caller(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = mint(
        issuer,
        scopes=[SCOPE_SEND, SCOPE_INBOX],
        orgnr_child="912345678",
        subject=SUB,
    )
    caller = await verifier.verify(token)
    assert caller == Caller(
        client_id="hf-molde",
        subject=SUB,
        orgnr_parent=ORGNR,
        orgnr_child="912345678",
        scopes=frozenset({SCOPE_SEND, SCOPE_INBOX}),
    )
    assert caller.has(SCOPE_SEND)
    assert not caller.has(SCOPE_OPS_CONTENT)
    assert caller.organisations == {ORGNR, "912345678"}


async def test_subject_falls_back_to_the_client_and_orgnrs_may_be_absent(
    issuer: DevIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.sign(claims(sub=None, **{ORGNR_PARENT: None}))
    caller = await verifier.verify(token)
    assert caller.subject == "hf-molde"
    assert caller.orgnr_parent is None
    assert caller.organisations == frozenset()


async def test_scope_as_a_space_separated_string(
    issuer: DevIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.sign(claims(scope=f"{SCOPE_SEND}  {SCOPE_INBOX}"))
    assert (await verifier.verify(token)).scopes == {SCOPE_SEND, SCOPE_INBOX}


async def test_scope_as_a_list_as_helseid_sends_it(
    issuer: DevIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.sign(claims(scope=[SCOPE_OPS_READ, SCOPE_OPS_ACT]))
    assert (await verifier.verify(token)).scopes == {SCOPE_OPS_READ, SCOPE_OPS_ACT}


async def test_no_scope_is_no_permission(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    assert (await verifier.verify(issuer.sign(claims(scope=None)))).scopes == frozenset()


async def test_audience_may_be_a_list(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.sign(claims(aud=["some-other-api", AUD]))
    assert (await verifier.verify(token)).client_id == "hf-molde"


# -- each rule, refused on its own


def _hs256_with_public_key(issuer: DevIssuer) -> str:
    """The classic confusion attack: the issuer's public key used as an HMAC secret."""
    secret = RSAKey.import_key(issuer.jwks()["keys"][0]).as_pem(private=False)
    header = {"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def _tampered(issuer: DevIssuer) -> str:
    head, _, sig = issuer.sign(claims()).split(".")
    forged = b64(json.dumps(claims(scope=[SCOPE_OPS_CONTENT])).encode())
    return f"{head}.{forged}.{sig}"


BAD_TOKENS: dict[str, tuple[str, Any]] = {
    "empty": ("token-missing", lambda i, o: ""),
    "not a jwt": ("token-malformed", lambda i, o: "not-a-token"),
    "five parts (JWE)": ("token-malformed", lambda i, o: "a.b.c.d.e"),
    "header not base64": ("token-malformed", lambda i, o: "!!!.e30.c2ln"),
    "header not an object": ("token-malformed", lambda i, o: f"{b64(b'[1]')}.e30.c2ln"),
    "no kid": ("token-malformed", lambda i, o: i.sign(claims(), header={"kid": None})),
    "no client_id": ("token-malformed", lambda i, o: i.sign(claims(client_id=None))),
    "client_id not a string": ("token-malformed", lambda i, o: i.sign(claims(client_id=7))),
    "DPoP-bound, sent as bearer": (
        "token-malformed",
        lambda i, o: i.sign(claims(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})),
    ),
    "no exp": ("token-malformed", lambda i, o: i.sign(claims(exp=None))),
    "exp not a number": ("token-malformed", lambda i, o: i.sign(claims(exp="soon"))),
    "exp a boolean": ("token-malformed", lambda i, o: i.sign(claims(exp=True))),
    "scope a number": ("token-malformed", lambda i, o: i.sign(claims(scope=5))),
    "orgnr a number": ("token-malformed", lambda i, o: i.sign(claims(**{ORGNR_CHILD: 1}))),
    "claims not an object": ("token-malformed", lambda i, o: _raw_payload(i, b"[1]")),
    "claims not json": ("token-malformed", lambda i, o: _raw_payload(i, b"{not json")),
    "wrong issuer": ("token-wrong-issuer", lambda i, o: i.sign(claims(iss="https://evil"))),
    "no issuer": ("token-wrong-issuer", lambda i, o: i.sign(claims(iss=None))),
    "wrong audience": ("token-wrong-audience", lambda i, o: i.sign(claims(aud="other-api"))),
    "no audience": ("token-wrong-audience", lambda i, o: i.sign(claims(aud=None))),
    "audience list without us": (
        "token-wrong-audience",
        lambda i, o: i.sign(claims(aud=["a", "b"])),
    ),
    "expired": ("token-expired", lambda i, o: i.sign(claims(exp=int(NOW) - 31))),
    "not yet valid": ("token-not-yet-valid", lambda i, o: i.sign(claims(nbf=int(NOW) + 31))),
    "issued in the future": (
        "token-not-yet-valid",
        lambda i, o: i.sign(claims(iat=int(NOW) + 31, nbf=None)),
    ),
    "other key, same kid": (
        "token-bad-signature",
        lambda i, o: o.sign(claims(), header={"kid": i.kid}),
    ),
    "payload changed": ("token-bad-signature", lambda i, o: _tampered(i)),
    "signature stripped": (
        "token-bad-signature",
        lambda i, o: i.sign(claims()).rsplit(".", 1)[0] + ".",
    ),
    "unknown kid": (
        "token-unknown-key",
        lambda i, o: o.sign(claims(), header={"kid": "not-a-key-of-the-issuer"}),
    ),
    "alg none": (
        "token-wrong-algorithm",
        lambda i, o: unsigned({"alg": "none", "kid": i.kid}, claims()),
    ),
    "alg missing": ("token-malformed", lambda i, o: unsigned({"kid": i.kid}, claims(), b"x")),
    "HS256 with the public key as secret": (
        "token-wrong-algorithm",
        lambda i, o: _hs256_with_public_key(i),
    ),
    "alg the key is not bound to": (
        "token-wrong-algorithm",
        lambda i, o: i.sign(claims(), header={"alg": "PS256"}),
    ),
}


def _raw_payload(issuer: DevIssuer, payload: bytes) -> str:
    """A correctly signed token whose payload is not a claim set."""
    key = issuer._key
    return jws.serialize_compact({"alg": "RS256", "kid": issuer.kid}, payload, key)


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_each_rule_is_enforced_and_the_answer_is_discreet(
    case: str, issuer: DevIssuer, other: DevIssuer, clock: Clock, source: Source
) -> None:
    code, build = BAD_TOKENS[case]
    token = build(issuer, other)
    verifier = make_verifier(source, clock, refetch_interval_seconds=0.0)
    error = await rejected(verifier, token)
    assert error.code == code, error
    assert_discreet(error, token)


async def test_the_leeway_forgives_small_clock_differences(
    issuer: DevIssuer, verifier: TokenVerifier
) -> None:
    # 29 s past exp, 29 s before nbf and iat: within the default 30 s
    late = issuer.sign(claims(exp=int(NOW) - 29))
    early = issuer.sign(claims(nbf=int(NOW) + 29, iat=int(NOW) + 29))
    assert (await verifier.verify(late)).client_id == "hf-molde"
    assert (await verifier.verify(early)).client_id == "hf-molde"


async def test_without_leeway_a_just_expired_token_is_refused(
    issuer: DevIssuer, source: Source, clock: Clock
) -> None:
    strict = make_verifier(source, clock, leeway_seconds=0.0)
    assert (await rejected(strict, issuer.sign(claims(exp=int(NOW))))).code == "token-expired"
    assert (await strict.verify(issuer.sign(claims(exp=int(NOW) + 1)))).client_id


async def test_time_moves_a_good_token_to_expired(
    issuer: DevIssuer, verifier: TokenVerifier, clock: Clock
) -> None:
    token = mint(issuer, lifetime_seconds=60)
    await verifier.verify(token)
    clock.wall += 60 + 30
    assert (await rejected(verifier, token)).code == "token-expired"


@pytest.mark.parametrize("case", ["alg none", "HS256 with the public key as secret"])
async def test_unsafe_algorithms_are_refused_even_when_the_key_names_no_alg(
    case: str, issuer: DevIssuer, other: DevIssuer, clock: Clock
) -> None:
    # not every issuer binds its keys to an algorithm in the JWKS
    [key] = issuer.jwks()["keys"]
    source = Source({"keys": [{k: v for k, v in key.items() if k != "alg"}]})
    verifier = make_verifier(source, clock)
    assert (await verifier.verify(mint(issuer))).client_id
    token = BAD_TOKENS[case][1](issuer, other)
    assert (await rejected(verifier, token)).code == "token-wrong-algorithm"


async def test_only_the_configured_algorithms_are_accepted(
    issuer: DevIssuer, other: DevIssuer, clock: Clock
) -> None:
    [key] = issuer.jwks()["keys"]
    source = Source({"keys": [{k: v for k, v in key.items() if k != "alg"}]})
    ps256 = issuer.sign(claims(), header={"alg": "PS256"})
    assert (await make_verifier(source, clock).verify(ps256)).client_id
    rs_only = make_verifier(source, clock, algorithms=("RS256",))
    assert (await rejected(rs_only, ps256)).code == "token-wrong-algorithm"


def test_unsafe_algorithms_cannot_be_configured(source: Source) -> None:
    for algs in [("none",), ("HS256",), ("RS256", "HS512"), ()]:
        with pytest.raises(ValueError, match="algorithms"):
            TokenVerifier(issuer=DEV_ISSUER, audience=AUD, keys=source, algorithms=algs)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc.def.ghi ", "abc.def.ghi"),
        (None, "token-missing"),
        ("", "token-missing"),
        ("Bearer ", "token-missing"),
        ("Basic dXNlcjpwdw==", "token-malformed"),
        ("DPoP abc.def.ghi", "token-malformed"),
        ("abc.def.ghi", "token-malformed"),
    ],
)
def test_the_bearer_token_is_taken_from_the_header(header: str | None, expected: str) -> None:
    if expected.startswith("token-"):
        with pytest.raises(TokenRejected) as info:
            bearer_token(header)
        assert info.value.code == expected
        assert "dXNlcjpwdw" not in str(info.value)
    else:
        assert bearer_token(header) == expected


def test_rejection_codes_are_the_documented_ones() -> None:
    with pytest.raises(ValueError, match="unknown rejection code"):
        TokenRejected("token-bad", "x")


# -- keys: caching, rotation, rate limit, outage


async def test_keys_are_cached(issuer: DevIssuer, verifier: TokenVerifier, source: Source) -> None:
    for _ in range(5):
        await verifier.verify(mint(issuer))
    assert source.fetches == 1


async def test_the_cache_expires(
    issuer: DevIssuer, verifier: TokenVerifier, source: Source, clock: Clock
) -> None:
    await verifier.verify(mint(issuer))
    clock.mono += 299
    await verifier.verify(mint(issuer))
    assert source.fetches == 1
    clock.mono += 2
    await verifier.verify(mint(issuer))
    assert source.fetches == 2


async def test_an_unknown_kid_refetches_and_finds_the_rotated_key(
    issuer: DevIssuer, other: DevIssuer, verifier: TokenVerifier, source: Source, clock: Clock
) -> None:
    await verifier.verify(mint(issuer))
    # the issuer publishes its next key and starts signing with it
    rotated = other.jwks()["keys"][0] | {"kid": "next-key"}
    source.document = {"keys": [*issuer.jwks()["keys"], rotated]}
    clock.mono += 11
    token = other.sign(claims(), header={"kid": "next-key"})
    assert (await verifier.verify(token)).client_id == "hf-molde"
    assert source.fetches == 2
    # the old key still works, from the cache
    await verifier.verify(mint(issuer))
    assert source.fetches == 2


async def test_unknown_kids_cannot_make_the_verifier_hammer_the_issuer(
    issuer: DevIssuer, other: DevIssuer, verifier: TokenVerifier, source: Source, clock: Clock
) -> None:
    await verifier.verify(mint(issuer))  # fetch 1
    clock.mono += 11
    bogus = [other.sign(claims(), header={"kid": f"bogus-{n}"}) for n in range(2)]
    for token in bogus:  # the first refetches, the second is within the rate window
        assert (await rejected(verifier, token)).code == "token-unknown-key"
    assert source.fetches == 2
    clock.mono += 9
    assert (await rejected(verifier, bogus[0])).code == "token-unknown-key"
    assert source.fetches == 2
    clock.mono += 2  # the window has passed: one more try
    assert (await rejected(verifier, bogus[1])).code == "token-unknown-key"
    assert source.fetches == 3


async def test_a_refetch_right_after_a_fetch_waits_for_the_window(
    issuer: DevIssuer, other: DevIssuer, verifier: TokenVerifier, source: Source, clock: Clock
) -> None:
    await verifier.verify(mint(issuer))
    source.document = {"keys": [other.jwks()["keys"][0] | {"kid": "next-key"}]}
    token = other.sign(claims(), header={"kid": "next-key"})
    clock.mono += 5
    assert (await rejected(verifier, token)).code == "token-unknown-key"
    clock.mono += 5
    assert (await verifier.verify(token)).client_id
    assert source.fetches == 2


async def test_concurrent_first_calls_share_one_fetch(
    issuer: DevIssuer, verifier: TokenVerifier, source: Source
) -> None:
    source.delay = 0.05
    callers = await asyncio.gather(*(verifier.verify(mint(issuer)) for _ in range(20)))
    assert {c.client_id for c in callers} == {"hf-molde"}
    assert source.fetches == 1


async def test_concurrent_unknown_kids_share_one_refetch(
    issuer: DevIssuer, other: DevIssuer, verifier: TokenVerifier, source: Source, clock: Clock
) -> None:
    await verifier.verify(mint(issuer))
    clock.mono += 11
    source.delay = 0.05
    tokens = [other.sign(claims(), header={"kid": f"bogus-{n}"}) for n in range(10)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert {r.code for r in results if isinstance(r, TokenRejected)} == {"token-unknown-key"}
    assert len(results) == 10
    assert source.fetches == 2


async def test_issuer_unreachable_with_nothing_cached(
    issuer: DevIssuer, verifier: TokenVerifier, source: Source, clock: Clock
) -> None:
    source.failing = True
    token = mint(issuer)
    error = await rejected(verifier, token)
    assert error.code == "issuer-unreachable"
    assert_discreet(error, token)
    # no retry within the window; after it, the issuer is back and the token verifies
    assert (await rejected(verifier, token)).code == "issuer-unreachable"
    assert source.fetches == 1
    source.failing = False
    clock.mono += 10
    assert (await verifier.verify(token)).client_id == "hf-molde"


async def test_known_keys_keep_working_while_the_issuer_is_down(
    issuer: DevIssuer, verifier: TokenVerifier, source: Source, clock: Clock
) -> None:
    await verifier.verify(mint(issuer))
    source.failing = True
    clock.mono += 301  # cache expired: the refresh fails
    assert (await verifier.verify(mint(issuer))).client_id == "hf-molde"
    assert source.fetches == 2
    await verifier.verify(mint(issuer))  # within the window: no new attempt
    assert source.fetches == 2


async def test_a_document_that_is_not_a_jwks_counts_as_unreachable(
    issuer: DevIssuer, verifier: TokenVerifier, source: Source
) -> None:
    source.document = {"nokeys": []}
    assert (await rejected(verifier, mint(issuer))).code == "issuer-unreachable"


@pytest.mark.filterwarnings("ignore:Key size should be")
async def test_unusable_keys_in_the_set_are_skipped(
    issuer: DevIssuer, source: Source, clock: Clock
) -> None:
    small = RSAKey.generate_key(1024, private=False).as_dict(private=False)
    good = issuer.jwks()["keys"][0]
    source.document = {
        "keys": [
            {**small, "kid": "small"},
            {**good, "kid": "enc", "use": "enc"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "kid": "broken", "n": "AA", "e": "AQAB"},
            "not a key",
            good,
        ]
    }
    verifier = make_verifier(source, clock)
    assert (await verifier.verify(mint(issuer))).client_id
    for kid in ["small", "enc", "hmac", "broken"]:
        token = issuer.sign(claims(), header={"kid": kid})
        assert (await rejected(verifier, token)).code == "token-unknown-key", kid


async def test_a_jwks_with_private_parts_is_used_as_public_only(
    issuer: DevIssuer, clock: Clock
) -> None:
    private = issuer._key.as_dict(private=True) | {"kid": issuer.kid}
    verifier = make_verifier(Source({"keys": [private]}), clock)
    assert (await verifier.verify(mint(issuer))).client_id
    stored = next(iter(verifier._keys.values())).key
    assert not stored.is_private


# -- the real path: a JWKS served over HTTP


class JwksServer:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.status = 200
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                # the keys even on an error status: only the status may make it fail
                body = json.dumps(outer.document).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server(issuer: DevIssuer) -> Iterator[JwksServer]:
    server = JwksServer(issuer.jwks())
    yield server
    server.stop()


async def test_http_jwks_verifies_caches_and_rotates(
    issuer: DevIssuer, other: DevIssuer, jwks_server: JwksServer, clock: Clock
) -> None:
    verifier = TokenVerifier(
        issuer=DEV_ISSUER,
        audience=AUD,
        keys=HttpJwks(jwks_server.url),
        clock=lambda: clock.wall,
        monotonic=lambda: clock.mono,
    )
    for _ in range(3):
        assert (await verifier.verify(mint(issuer))).client_id == "hf-molde"
    assert jwks_server.hits == 1
    bogus = other.sign(claims(), header={"kid": "bogus"})
    clock.mono += 11
    assert (await rejected(verifier, bogus)).code == "token-unknown-key"
    assert (await rejected(verifier, bogus)).code == "token-unknown-key"
    assert jwks_server.hits == 2
    jwks_server.document = {"keys": [other.jwks()["keys"][0] | {"kid": "next-key"}]}
    clock.mono += 11
    assert (await verifier.verify(other.sign(claims(), header={"kid": "next-key"}))).client_id
    assert jwks_server.hits == 3


@pytest.mark.parametrize("status", [500, 404, 302])
async def test_http_jwks_failure_is_issuer_unreachable(
    status: int, issuer: DevIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.status = status
    verifier = TokenVerifier(issuer=DEV_ISSUER, audience=AUD, keys=HttpJwks(jwks_server.url))
    assert (await rejected(verifier, mint(issuer, issued_at=None))).code == "issuer-unreachable"
    assert jwks_server.hits == 1


async def test_http_jwks_not_listening_is_issuer_unreachable(issuer: DevIssuer) -> None:
    server = JwksServer({})
    url = server.url
    server.stop()
    verifier = TokenVerifier(issuer=DEV_ISSUER, audience=AUD, keys=HttpJwks(url))
    assert (await rejected(verifier, mint(issuer, issued_at=None))).code == "issuer-unreachable"


async def test_http_jwks_refuses_an_oversized_document(jwks_server: JwksServer) -> None:
    jwks_server.document = {"keys": [], "padding": "x" * 10_000}
    with pytest.raises(Exception, match="larger than allowed"):
        await HttpJwks(jwks_server.url, max_bytes=4096).fetch()


# -- the development issuer


def test_dev_issuer_key_is_private_to_the_owner_and_kept(tmp_path: Path) -> None:
    first = DevIssuer.load_or_create(tmp_path / "d", DEV_ISSUER)
    path = tmp_path / "d" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temp file left
    second = DevIssuer.load_or_create(tmp_path / "d", DEV_ISSUER)
    assert second.kid == first.kid
    assert second.jwks() == first.jwks()


def test_dev_issuer_kid_is_the_rfc7638_thumbprint(issuer: DevIssuer) -> None:
    jwk = issuer.jwks()["keys"][0]
    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    assert issuer.kid == b64(hashlib.sha256(canonical.encode()).digest())
    assert jwk["kid"] == issuer.kid


def test_dev_issuer_publishes_no_private_parts(issuer: DevIssuer) -> None:
    [jwk] = issuer.jwks()["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert "BEGIN" not in repr(issuer)


def test_dev_issuer_refuses_a_broken_key_file(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key")
    with pytest.raises(ValueError, match="not an RSA private key"):
        DevIssuer.load_or_create(tmp_path, DEV_ISSUER)


def test_dev_tokens_are_shaped_like_helseids(issuer: DevIssuer) -> None:
    token = issuer.mint(
        client_id="c", audience=AUD, scopes=[SCOPE_INBOX], orgnr_parent=ORGNR, issued_at=NOW
    )
    header, body, _ = token.split(".")
    assert json.loads(unb64(header))["kid"] == issuer.kid
    payload = json.loads(unb64(body))
    assert set(payload) == {
        "iss", "aud", "sub", "client_id", "scope", "iat", "nbf", "exp", "jti", ORGNR_PARENT
    }  # fmt: skip
    assert payload["scope"] == [SCOPE_INBOX]
    assert payload["exp"] - payload["iat"] == 3600


def test_dev_issuer_refuses_a_scope_with_a_space(issuer: DevIssuer) -> None:
    with pytest.raises(ValueError, match="one word"):
        issuer.mint(client_id="c", audience=AUD, scopes=["a b"])


@given(
    client_id=st.text(min_size=1, max_size=30),
    scopes=st.lists(st.from_regex(r"[a-z0-9./_:-]{1,24}", fullmatch=True), max_size=6),
    orgnr_parent=st.none() | st.from_regex(r"[0-9]{9}", fullmatch=True),
    orgnr_child=st.none() | st.from_regex(r"[0-9]{9}", fullmatch=True),
    subject=st.none() | st.text(min_size=1, max_size=30),
    lifetime=st.integers(min_value=1, max_value=10 * 24 * 3600),
)
@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mint_then_verify_gives_the_same_caller(
    issuer: DevIssuer,
    client_id: str,
    scopes: list[str],
    orgnr_parent: str | None,
    orgnr_child: str | None,
    subject: str | None,
    lifetime: int,
) -> None:
    verifier = TokenVerifier(
        issuer=DEV_ISSUER, audience=AUD, keys=issuer.key_source(), clock=lambda: NOW
    )
    token = issuer.mint(
        client_id=client_id,
        audience=AUD,
        scopes=scopes,
        orgnr_parent=orgnr_parent,
        orgnr_child=orgnr_child,
        subject=subject,
        lifetime_seconds=lifetime,
        issued_at=NOW,
    )
    assert asyncio.run(verifier.verify(token)) == Caller(
        client_id=client_id,
        subject=subject or client_id,
        orgnr_parent=orgnr_parent,
        orgnr_child=orgnr_child,
        scopes=frozenset(scopes),
    )


# -- configuration and the command


def test_without_a_real_issuer_the_dev_issuer_is_trusted(tmp_path: Path) -> None:
    verifier, dev = verifier_for(Settings(data_dir=tmp_path))
    assert dev is not None
    assert (verifier.issuer, verifier.audience) == (DEV_ISSUER, "ip-gateway")
    assert (tmp_path / KEY_FILE).exists()


def test_a_real_issuer_is_fetched_over_https(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        auth_issuer="https://helseid-sts.nhn.no",
        auth_jwks_url="https://helseid-sts.nhn.no/.well-known/openid-configuration/jwks",
        auth_audience="nhn:ip-gateway",
    )
    verifier, dev = verifier_for(settings)
    assert dev is None
    assert verifier.issuer == "https://helseid-sts.nhn.no"
    assert verifier.audience == "nhn:ip-gateway"
    assert isinstance(verifier._source, HttpJwks)
    assert not (tmp_path / KEY_FILE).exists()


@pytest.mark.parametrize(
    ("issuer_url", "jwks_url", "complaint"),
    [
        ("https://helseid-sts.nhn.no", None, "IPGW_AUTH_JWKS_URL is not"),
        (None, "https://helseid-sts.nhn.no/jwks", "IPGW_AUTH_ISSUER is not"),
        ("https://helseid-sts.nhn.no", "http://helseid-sts.nhn.no/jwks", "https://"),
        ("https://helseid-sts.nhn.no", "file:///etc/jwks.json", "https://"),
    ],
)
def test_an_incomplete_auth_configuration_is_refused(
    tmp_path: Path, issuer_url: str | None, jwks_url: str | None, complaint: str
) -> None:
    settings = Settings(data_dir=tmp_path, auth_issuer=issuer_url, auth_jwks_url=jwks_url)
    with pytest.raises(AuthConfigError, match=complaint):
        verifier_for(settings)


def test_plain_http_jwks_is_allowed_on_the_loopback(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, auth_issuer="https://x", auth_jwks_url="http://127.0.0.1:9/jwks"
    )
    assert verifier_for(settings)[1] is None


@pytest.fixture
def no_real_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ["IPGW_AUTH_ISSUER", "IPGW_AUTH_JWKS_URL", "IPGW_AUTH_AUDIENCE"]:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_real_issuer")
@pytest.mark.parametrize(
    ("preset", "scopes"),
    [
        ("hospital", {SCOPE_SEND}),
        ("ke", {SCOPE_INBOX}),
        ("operator", {SCOPE_OPS_READ, SCOPE_OPS_ACT}),
        ("privileged", {SCOPE_OPS_READ, SCOPE_OPS_ACT, SCOPE_OPS_CONTENT}),
    ],
)
async def test_ipgw_token_mints_what_the_gateway_accepts(
    tmp_path: Path, preset: str, scopes: set[str]
) -> None:
    result = CliRunner().invoke(
        app,
        ["token", "--as", preset, "--orgnr-parent", ORGNR, "--data-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    verifier, _ = verifier_for(Settings(data_dir=tmp_path))
    caller = await verifier.verify(result.stdout.strip())
    assert caller.client_id == f"ipgw-dev-{preset}"
    assert caller.scopes == scopes
    assert caller.orgnr_parent == ORGNR


@pytest.mark.usefixtures("no_real_issuer")
async def test_ipgw_token_with_explicit_claims(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "token",
            "--client-id", "ke-molde",
            "--scope", SCOPE_INBOX,
            "--scope", "ipgw/consent.read",
            "--orgnr-child", "912345678",
            "--subject", SUB,
            "--lifetime", "60",
            "--data-dir", str(tmp_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    verifier, _ = verifier_for(Settings(data_dir=tmp_path))
    caller = await verifier.verify(result.stdout.strip())
    assert caller == Caller(
        client_id="ke-molde",
        subject=SUB,
        orgnr_parent=None,
        orgnr_child="912345678",
        scopes=frozenset({SCOPE_INBOX, "ipgw/consent.read"}),
    )


@pytest.mark.usefixtures("no_real_issuer")
def test_ipgw_token_needs_a_client(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["token", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--client-id" in result.stderr


def test_ipgw_token_refuses_when_a_real_issuer_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPGW_AUTH_ISSUER", "https://helseid-sts.nhn.no")
    result = CliRunner().invoke(app, ["token", "--as", "hospital", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "IPGW_AUTH_ISSUER" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / KEY_FILE).exists()
