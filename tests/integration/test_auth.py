"""Only the right parties get in, each sees only its own (issue 8): a negative test for every
rule, each answered with its status and code and written to the audit log."""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.auth.dev_issuer import DevIssuer
from gateway.auth.tokens import SCOPE_INBOX, SCOPE_OPS_READ, SCOPE_SEND
from gateway.config import Settings
from gateway.demo.peers import GATEWAY
from gateway.demo.samples import HELSE_MORE_OG_ROMSDAL, ke_orgnr, make_notice
from gateway.demo.tokens import PartyTokens
from gateway.domain.model import Organisation
from gateway.runtime import Runtime
from mappings.fhir.notice import notice_to_bundle
from mappings.plo.msghead import to_bytes
from mappings.plo.notice import notice_to_msghead
from tests.integration.test_pipeline import wait_status

pytestmark = pytest.mark.integration

ST_OLAVS_ORGNR = "883974832"
FHIR = {"content-type": "application/fhir+json"}


def tokens(client: httpx.AsyncClient) -> PartyTokens:
    assert isinstance(client.auth, PartyTokens)
    return client.auth


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def notice_bundle(seed: int, sender: Organisation = HELSE_MORE_OG_ROMSDAL) -> bytes:
    n = make_notice(random.Random(seed), "1506")
    n = n.model_copy(update={"sender": n.sender.model_copy(update={"organisation": sender})})
    return orjson.dumps(notice_to_bundle(n))


async def refusals(client: httpx.AsyncClient) -> list[tuple[str, str, str]]:
    audit = (await client.get("/ops/audit")).json()
    return [(a["actor"], a["target"], a["reason"]) for a in audit if a["action"] == "refused"]


# --------------------------------------------------------------------------- the token


async def test_every_bad_token_is_refused_with_its_code_and_recorded(
    gateway: tuple[httpx.AsyncClient, Runtime], tmp_path: Path
) -> None:
    client, rt = gateway
    issuer = rt.dev_issuer
    assert issuer is not None
    ops = {"client_id": "ops", "audience": "ip-gateway", "scopes": [SCOPE_OPS_READ]}
    stranger = DevIssuer.load_or_create(tmp_path / "elsewhere")  # a key the gateway never saw
    cases = {
        "token-missing": "",
        "token-malformed": "Bearer a.b.c",
        "token-wrong-issuer": "Bearer "
        + DevIssuer(issuer._key, "https://evil.example").mint(**ops),
        "token-wrong-audience": "Bearer " + issuer.mint(**{**ops, "audience": "another-api"}),
        "token-expired": "Bearer "
        + issuer.mint(**ops, issued_at=time.time() - 7200, lifetime_seconds=600),
        "token-not-yet-valid": "Bearer " + issuer.mint(**ops, not_before=time.time() + 3600),
        "token-unknown-key": "Bearer " + stranger.mint(**ops),
    }
    for code, header in cases.items():
        r = await client.get("/ops/messages", headers={"Authorization": header})
        assert r.status_code == 401, (code, r.text)
        assert r.json()["type"].endswith(f"/{code}"), r.text
        assert code in r.headers["www-authenticate"]
    recorded = [reason for _, target, reason in await refusals(client)]
    assert sorted(recorded) == sorted(cases)


async def test_a_token_without_the_scope_is_refused_and_recorded(
    client: httpx.AsyncClient,
) -> None:
    hospital = tokens(client).mint("his-1", (SCOPE_SEND,), HELSE_MORE_OG_ROMSDAL.orgnr)
    for method, path in (("GET", "/ops/messages"), ("GET", "/stats"), ("GET", "/ke/1506/inbox")):
        r = await client.request(method, path, headers=bearer(hospital))
        assert r.status_code == 403, path
        assert r.json()["type"].endswith("/scope-missing")
    consents = await client.get(
        "/fhir/Consent", params={"patient": "x|y"}, headers=bearer(hospital)
    )
    assert consents.status_code == 403
    assert ("his-1", "GET /ops/messages", "scope-missing") in await refusals(client)


async def test_the_probes_and_metrics_need_no_token(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/console/"):
        r = await client.get(path, headers={"Authorization": ""})
        assert r.status_code == 200, path


# --------------------------------------------------------------------------- each its own


async def test_a_ke_reads_only_its_own_kommunes_inbox(client: httpx.AsyncClient) -> None:
    molde = tokens(client).mint("ke-molde", (SCOPE_INBOX,), ke_orgnr("1506"))
    assert (await client.get("/ke/1506/inbox", headers=bearer(molde))).status_code == 200
    for path in ("/ke/1508/inbox", "/ke/1508/transfers"):
        r = await client.get(path, headers=bearer(molde))
        assert r.status_code == 403
        assert r.json()["type"].endswith("/not-your-inbox")
    r = await client.post("/ke/1508/inbox/whatever/ack", headers=bearer(molde))
    assert r.status_code == 403
    assert ("ke-molde", "GET /ke/1508/inbox", "not-your-inbox") in await refusals(client)


async def test_a_sender_reads_only_its_own_receipts(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/$process-message", content=notice_bundle(601), headers=FHIR)
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    other = tokens(client).mint("another-his", (SCOPE_SEND,), HELSE_MORE_OG_ROMSDAL.orgnr)
    theirs = await client.get(f"/receipts/{message_id}", headers=bearer(other))
    unknown = await client.get("/receipts/no-such-message", headers=bearer(other))
    # the same answer as for a message that does not exist: nothing is told
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["type"] == unknown.json()["type"]
    assert ("another-his", f"GET /receipts/{message_id}", "not-your-message") in (
        await refusals(client)
    )
    mine = await client.get(f"/receipts/{message_id}")
    assert mine.json()["type"].endswith("/receipt-pending")


async def test_a_resend_is_a_duplicate_only_for_the_client_that_sent_it(
    client: httpx.AsyncClient,
) -> None:
    body = notice_bundle(607)
    first = await client.post("/fhir/$process-message", content=body, headers=FHIR)
    assert first.status_code == 202
    again = await client.post("/fhir/$process-message", content=body, headers=FHIR)
    assert again.json()["id"] == first.json()["id"]  # its own re-send: the first message's id
    # another client of the same organisation, with the same source and id: not told the
    # first message's id or status, and its message is kept for the operator
    other = tokens(client).mint("his-2", (SCOPE_SEND,), HELSE_MORE_OG_ROMSDAL.orgnr)
    theirs = await client.post(
        "/fhir/$process-message", content=body, headers={**FHIR, **bearer(other)}
    )
    assert theirs.status_code == 400
    assert first.json()["id"] not in theirs.text
    assert "already used by another sender" in theirs.text
    view = (await client.get(f"/messages/{theirs.json()['id']}")).json()
    assert view["status"] == "REJECTED"


# --------------------------------------------------------------------------- spoofing


async def test_a_fhir_notice_from_another_organisation_is_refused_as_spoofing(
    client: httpx.AsyncClient,
) -> None:
    st_olavs = tokens(client).mint("stolav-his", (SCOPE_SEND,), ST_OLAVS_ORGNR)
    r = await client.post(
        "/fhir/$process-message",
        content=notice_bundle(602),  # says it is from Helse Møre og Romsdal
        headers={**FHIR, **bearer(st_olavs)},
    )
    assert r.status_code == 403
    assert "sender-spoofed" in r.json()["issue"][0]["diagnostics"]
    # kept for the operator, with its status and why
    view = (await client.get(f"/messages/{r.json()['id']}")).json()
    assert view["status"] == "REJECTED"
    assert "sender-spoofed" in view["reason"]
    assert ("stolav-his", "POST /fhir/$process-message", "sender-spoofed") in (
        await refusals(client)
    )


async def test_an_xml_notice_from_another_organisation_gets_an_apprec_x99(
    client: httpx.AsyncClient,
) -> None:
    n = make_notice(random.Random(603), "1506")
    body = to_bytes(notice_to_msghead(n, msg_id=n.sender_message_id, receiver=GATEWAY))
    st_olavs = tokens(client).mint("stolav-his", (SCOPE_SEND,), ST_OLAVS_ORGNR)
    r = await client.post(
        "/plo", content=body, headers={"content-type": "application/xml", **bearer(st_olavs)}
    )
    assert r.status_code == 403
    assert b'V="X99"' in r.content
    assert b"sender-spoofed" in r.content


async def test_a_unit_of_another_organisation_named_as_department_is_a_spoof(
    client: httpx.AsyncClient,
) -> None:
    """The trust is the caller's own, but the department is Molde's KE: refused."""
    n = make_notice(random.Random(604), "1506")
    molde_ke = Organisation(name="KE Molde", her_id=99001506)
    n = n.model_copy(update={"sender": n.sender.model_copy(update={"department": molde_ke})})
    hmr = tokens(client).mint("hmr-his", (SCOPE_SEND,), HELSE_MORE_OG_ROMSDAL.orgnr)
    r = await client.post(
        "/fhir/$process-message",
        content=orjson.dumps(notice_to_bundle(n)),
        headers={**FHIR, **bearer(hmr)},
    )
    assert r.status_code == 403
    # the same notice with the trust's own department goes through
    ok = await client.post("/fhir/$process-message", content=notice_bundle(604), headers=FHIR)
    assert ok.status_code == 202, ok.text


async def test_another_spelling_of_anothers_her_id_is_still_a_spoof(
    client: httpx.AsyncClient,
) -> None:
    """ "+99100001" reads as Helse Møre og Romsdal's HER-id in the model, so in the rule too."""
    bundle = orjson.loads(notice_bundle(606))
    header = bundle["entry"][0]["resource"]
    trust_url = next(
        e["resource"]["partOf"]["reference"]
        for e in bundle["entry"]
        if e["fullUrl"] == header["sender"]["reference"]
    )
    trust = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == trust_url)
    for ident in trust["identifier"]:
        ident["value"] = "+99100001" if ident["value"] == "99100001" else ST_OLAVS_ORGNR
    st_olavs = tokens(client).mint("stolav-his", (SCOPE_SEND,), ST_OLAVS_ORGNR)
    r = await client.post(
        "/fhir/$process-message",
        content=orjson.dumps(bundle),
        headers={**FHIR, **bearer(st_olavs)},
    )
    assert r.status_code == 403, r.text


async def test_a_sender_the_gateway_cannot_place_is_refused(client: httpx.AsyncClient) -> None:
    """No organisasjonsnummer in the message and a HER-id the directory does not list: the
    gateway cannot tell it from a spoof."""
    unknown = Organisation(name="Ukjent sykehus", her_id=91234567)
    anyone = tokens(client).mint("his-x", (SCOPE_SEND,), HELSE_MORE_OG_ROMSDAL.orgnr)
    r = await client.post(
        "/fhir/$process-message",
        content=notice_bundle(605, sender=unknown),
        headers={**FHIR, **bearer(anyone)},
    )
    assert r.status_code == 403


# --------------------------------------------------------------------------- limits


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_per_second": 20, "max_request_bytes": 4096})


async def test_a_client_over_its_rate_is_told_to_wait(client: httpx.AsyncClient) -> None:
    busy = tokens(client).mint("busy", (SCOPE_OPS_READ,), None)
    answers = [
        (await client.get("/ops/audit", headers=bearer(busy))).status_code for _ in range(30)
    ]
    assert answers.count(200) == 20
    assert answers[20:] == [429] * 10
    # another client is not held up by it
    assert (await client.get("/ops/audit")).status_code == 200


async def test_a_simulated_party_waits_as_it_is_told(client: httpx.AsyncClient) -> None:
    """The demo's and tests' parties honour Retry-After (gateway/demo/tokens.py): a burst over
    the rate gets through, later, instead of failing."""
    started = time.monotonic()
    answers = [(await client.get("/ops/audit")).status_code for _ in range(30)]
    assert answers == [200] * 30
    assert time.monotonic() - started >= 1.0  # the 21st waited out the 429's Retry-After


async def test_a_flood_of_bad_tokens_is_slowed_and_not_written_one_by_one(
    client: httpx.AsyncClient,
) -> None:
    bad = {"Authorization": "Bearer nope"}
    answers = [(await client.get("/stats", headers=bad)).status_code for _ in range(30)]
    assert answers.count(401) == 20
    assert answers[20:] == [429] * 10
    assert len(await refusals(client)) == 20


async def test_every_endpoint_has_a_size_limit(client: httpx.AsyncClient) -> None:
    big = {"ids": ["x" * 60] * 200}  # about 13 kB of JSON, over the 4 kB limit
    r = await client.post("/ops/messages/retry", json=big)
    assert r.status_code == 413
    assert r.json()["type"].endswith("/body-too-large")

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 1000

    streamed = await client.post(
        "/ops/messages/retry", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
