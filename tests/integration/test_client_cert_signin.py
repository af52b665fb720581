"""Mutual TLS for system clients, through the whole gateway (issue 8, gateway/auth/client_certs.py).

The TLS proxy is the test: its requests come from 127.0.0.1 (the ASGI client address), the
address configured as the proxy, with the client certificate in ``Client-Cert`` (RFC 9440).
Requests from anywhere else come over a second transport with another client address.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.api.app import create_app
from gateway.auth.client_certs import SYSTEM_SCOPES, load_clients, thumbprint
from gateway.auth.tokens import SCOPE_INBOX, SCOPE_SEND
from gateway.broker import EmbeddedBroker
from gateway.config import Settings
from gateway.demo.pki import Authority
from gateway.demo.process import GatewayProcess
from gateway.demo.samples import HELSE_MORE_OG_ROMSDAL, ke_orgnr
from gateway.domain.model import Organisation
from gateway.runtime import Runtime
from tests.integration.test_auth import ST_OLAVS_ORGNR, notice_bundle
from tests.tokens import TestTokens as OperatorTokens

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}
ST_OLAVS = Organisation(name="St. Olavs hospital HF", orgnr=ST_OLAVS_ORGNR)


class Pki:
    def __init__(self) -> None:
        self.ca = Authority.create("IPGW mTLS test CA")
        self.hospital = self.ca.issue("Helse Møre og Romsdal HF", orgnr=HELSE_MORE_OG_ROMSDAL.orgnr)
        self.ke = self.ca.issue("Molde kommune KE", orgnr=ke_orgnr("1506"))
        self.stranger = self.ca.issue("Ukjent leverandør AS", orgnr="974749025")
        self.elsewhere = Authority.create("Another CA").issue(
            "Helse Møre og Romsdal HF", orgnr=HELSE_MORE_OG_ROMSDAL.orgnr
        )


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def client_cert(certificate: x509.Certificate) -> dict[str, str]:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {"Client-Cert": f":{base64.b64encode(der).decode()}:"}


@pytest.fixture
def settings(settings: Settings, pki: Pki, tmp_path: Path) -> Settings:
    ca = tmp_path / "mtls-ca.pem"
    ca.write_bytes(pki.ca.certificate.public_bytes(serialization.Encoding.PEM))
    clients = tmp_path / "mtls-clients.toml"
    clients.write_text(
        f"""
[[client]]
id = "his-hmr"
orgnr = "{HELSE_MORE_OG_ROMSDAL.orgnr}"
scopes = ["{SCOPE_SEND}"]

[[client]]
id = "ke-molde"
orgnr = "{ke_orgnr("1506")}"
scopes = ["{SCOPE_INBOX}"]
""",
        encoding="utf-8",
    )
    return settings.model_copy(
        update={
            "mtls_trusted_proxies": ["127.0.0.1/32"],
            "mtls_trusted_ca": ca,
            "mtls_clients_file": clients,
        }
    )


class Parties:
    def __init__(self, app: Any, rt: Runtime) -> None:
        assert rt.dev_issuer is not None
        self.issuer = rt.dev_issuer
        #: through the proxy, with no token of its own: what a certificate client sends
        self.proxy = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
        #: the operators' view (tokens), to check what was recorded
        self.operator = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gw",
            auth=OperatorTokens(rt.dev_issuer, lambda: rt.directory, client_id="tests"),
        )
        #: straight to the gateway from another address, not through the proxy
        self.direct = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("192.0.2.7", 50123)),
            base_url="http://gw",
        )

    async def refusals(self) -> list[tuple[str, str, str]]:
        audit = (await self.operator.get("/ops/audit")).json()
        return [(a["actor"], a["target"], a["reason"]) for a in audit if a["action"] == "refused"]

    async def close(self) -> None:
        for c in (self.proxy, self.operator, self.direct):
            await c.aclose()


@pytest_asyncio.fixture
async def parties(settings: Settings) -> AsyncIterator[Parties]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        p = Parties(manager.app, app.state.runtime)
        try:
            yield p
        finally:
            await p.close()


async def test_a_listed_system_sends_with_its_certificate_alone(parties: Parties, pki: Pki) -> None:
    cert = client_cert(pki.hospital.certificate)
    r = await parties.proxy.post(
        "/fhir/$process-message", content=notice_bundle(701), headers={**FHIR, **cert}
    )
    assert r.status_code == 202, r.text
    message_id = r.json()["id"]
    # the timeline names the certificate's client
    view = (await parties.operator.get(f"/messages/{message_id}")).json()
    assert "client:mtls:his-hmr" in {e["actor"] for e in view["events"]}
    # its receipts are its own: readable with the certificate, not by a token client of the
    # same organisation
    mine = await parties.proxy.get(f"/receipts/{message_id}", headers=cert)
    assert mine.json()["type"].endswith("/receipt-pending"), mine.text
    other = parties.issuer.mint(
        client_id="his-token",
        audience="ip-gateway",
        scopes=[SCOPE_SEND],
        orgnr_parent=HELSE_MORE_OG_ROMSDAL.orgnr,
    )
    theirs = await parties.proxy.get(
        f"/receipts/{message_id}", headers={"Authorization": f"Bearer {other}"}
    )
    assert theirs.status_code == 404
    assert theirs.json()["type"].endswith("/unknown-message"), theirs.text


async def test_a_certificate_client_may_send_only_as_its_own_organisation(
    parties: Parties, pki: Pki
) -> None:
    r = await parties.proxy.post(
        "/fhir/$process-message",
        content=notice_bundle(702, sender=ST_OLAVS),
        headers={**FHIR, **client_cert(pki.hospital.certificate)},
    )
    assert r.status_code == 403, r.text
    assert "sender-spoofed" in r.json()["issue"][0]["diagnostics"]
    view = (await parties.operator.get(f"/messages/{r.json()['id']}")).json()
    assert view["status"] == "REJECTED"
    refused = ("mtls:his-hmr", "POST /fhir/$process-message", "sender-spoofed")
    assert refused in await parties.refusals()


async def test_a_certificate_gives_only_the_scopes_listed_for_its_client(
    parties: Parties, pki: Pki
) -> None:
    hospital = client_cert(pki.hospital.certificate)
    for path in ("/ops/messages", "/ke/1506/inbox"):
        r = await parties.proxy.get(path, headers=hospital)
        assert r.status_code == 403, path
        assert r.json()["type"].endswith("/scope-missing"), r.text
    ke = client_cert(pki.ke.certificate)
    assert (await parties.proxy.get("/ke/1506/inbox", headers=ke)).status_code == 200
    theirs = await parties.proxy.get("/ke/1508/inbox", headers=ke)
    assert theirs.status_code == 403
    assert theirs.json()["type"].endswith("/not-your-inbox")


async def test_each_refused_certificate_is_answered_with_its_code_and_recorded(
    parties: Parties, pki: Pki
) -> None:
    cases = {
        "client-cert-unknown": client_cert(pki.stranger.certificate),
        "client-cert-untrusted": client_cert(pki.elsewhere.certificate),
        "client-cert-malformed": {"Client-Cert": ":bm90IGEgY2VydGlmaWNhdGU=:"},
    }
    for code, headers in cases.items():
        r = await parties.proxy.get("/ke/1506/inbox", headers=headers)
        assert r.status_code == 401, (code, r.text)
        assert r.json()["type"].endswith(f"/{code}"), r.text
        assert code in r.headers["www-authenticate"]
        # no subject name in the answer: certificates are named by fingerprint
        assert "Ukjent" not in r.text
        assert "Møre" not in r.text
    recorded = {reason for _, _, reason in await parties.refusals()}
    assert set(cases) <= recorded


async def test_the_header_is_refused_from_anyone_but_the_proxy(parties: Parties, pki: Pki) -> None:
    """Straight to the gateway, a Client-Cert header is an attempt to pose as a client: refused
    even beside a valid token."""
    token = parties.issuer.mint(
        client_id="his-x", audience="ip-gateway", scopes=[SCOPE_SEND], orgnr_parent="983974899"
    )
    for headers in (
        client_cert(pki.hospital.certificate),
        {**client_cert(pki.hospital.certificate), "Authorization": f"Bearer {token}"},
    ):
        r = await parties.direct.get("/receipts/anything", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["type"].endswith("/client-cert-not-from-proxy")
    # the same token without the header is fine from there
    r = await parties.direct.get("/receipts/anything", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404
    assert ("anonymous", "GET /receipts/anything", "client-cert-not-from-proxy") in (
        await parties.refusals()
    )


async def test_a_certificate_bound_token_counts_only_with_its_certificate(
    parties: Parties, pki: Pki
) -> None:
    bound = parties.issuer.mint(
        client_id="his-bound",
        audience="ip-gateway",
        scopes=[SCOPE_SEND],
        orgnr_parent=HELSE_MORE_OG_ROMSDAL.orgnr,
        extra={"cnf": {"x5t#S256": thumbprint(pki.hospital.certificate)}},
    )
    auth = {"Authorization": f"Bearer {bound}"}
    body = notice_bundle(703)
    alone = await parties.proxy.post(
        "/fhir/$process-message", content=body, headers={**FHIR, **auth}
    )
    assert alone.status_code == 401
    assert "token-unbound" in alone.headers["www-authenticate"], alone.text
    wrong = await parties.proxy.post(
        "/fhir/$process-message",
        content=body,
        headers={**FHIR, **auth, **client_cert(pki.stranger.certificate)},
    )
    assert wrong.status_code == 401
    assert "token-unbound" in wrong.headers["www-authenticate"], wrong.text
    right = await parties.proxy.post(
        "/fhir/$process-message",
        content=body,
        headers={**FHIR, **auth, **client_cert(pki.hospital.certificate)},
    )
    assert right.status_code == 202, right.text
    # the token names the client: its own id, not the certificate's listing
    view = (await parties.operator.get(f"/messages/{right.json()['id']}")).json()
    assert "client:his-bound" in {e["actor"] for e in view["events"]}


def test_the_example_clients_file_is_one_the_gateway_takes() -> None:
    clients = load_clients(Path(__file__).parents[2] / "deploy" / "mtls-clients.example.toml")
    assert {c.id for c in clients} == {"hmr-dips", "molde-ke"}
    assert all(set(c.scopes) <= SYSTEM_SCOPES for c in clients)


def test_the_served_gateway_takes_the_proxy_as_the_tcp_peer(
    pki: Pki, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    """``ipgw serve`` over real HTTP: a proxy that adds X-Forwarded-For (as they do) still is
    the proxy. Were uvicorn to put the forwarded address in its place, as it does by default
    for 127.0.0.1, the certificate would be refused as not coming from the proxy."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.certificate.public_bytes(serialization.Encoding.PEM))
    clients = tmp_path / "clients.toml"
    clients.write_text(
        f'[[client]]\nid = "ke-molde"\norgnr = "{ke_orgnr("1506")}"\nscopes = ["{SCOPE_INBOX}"]\n',
        encoding="utf-8",
    )
    gw = GatewayProcess(
        tmp_path / "gw",
        {
            "IPGW_KAFKA_BOOTSTRAP": broker.bootstrap,
            "IPGW_KAFKA_GROUP_MODE": "assign",
            "IPGW_TOPIC_PREFIX": f"mtls{uuid.uuid4().hex[:8]}",
            "IPGW_MTLS_TRUSTED_PROXIES": '["127.0.0.1/32"]',
            "IPGW_MTLS_TRUSTED_CA": str(ca),
            "IPGW_MTLS_CLIENTS_FILE": str(clients),
        },
    )
    (tmp_path / "gw").mkdir()
    try:
        gw.start()
        headers = {**client_cert(pki.ke.certificate), "X-Forwarded-For": "203.0.113.9"}
        r = httpx.get(f"{gw.base_url}/ke/1506/inbox", headers=headers, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        gw.stop()
