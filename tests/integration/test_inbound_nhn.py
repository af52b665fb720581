"""A hospital's MsgHead that reaches the gateway through the NHN message service (addressed to
the gateway's HER-id) is taken in like a POST /plo and goes on its way; one that cannot be
read is kept as REJECTED; neither is marked read before it is kept.

On the health network documents travel signed and encrypted (CMS, the standards README,
"Transport and identity"): the gateway decrypts with its key and checks the signature and the
signer's certificate before reading anything. A bad signature is answered with AppRec S01, an
expired, untrusted or foreign certificate with S02, a revoked one with S03, a sender that is
not who NHN delivered it from with S99; each such document is kept, as it came, REJECTED with
its receipt, and goes no further. Certificates come from a test PKI made here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from gateway.cms import CONTENT_TYPE, seal
from gateway.config import Settings
from gateway.demo.peers import notice_xml_body
from gateway.demo.pki import Authority, SimulatedPki
from gateway.demo.platforms.nhn_msh_server import NhnMessageService

pytestmark = pytest.mark.integration

GATEWAY_HER = 99999999
#: Helse Møre og Romsdal HF, the sender the sample notices name (HER-id and orgnr)
HOSPITAL_HER = 99100001
HOSPITAL_ORGNR = "983974899"
ALESUND_KE_HER = 99001508


@pytest.fixture
def pki(tmp_path: Path) -> SimulatedPki:
    pki = SimulatedPki(tmp_path / "pki")
    pki.ensure(GATEWAY_HER, ALESUND_KE_HER)
    pki.identity(HOSPITAL_HER, orgnr=HOSPITAL_ORGNR)
    return pki


@pytest.fixture
def service(pki: SimulatedPki) -> Iterator[NhnMessageService]:
    s = NhnMessageService(pki=pki)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def settings(
    settings: Settings, tmp_path: Path, service: NhnMessageService, pki: SimulatedPki
) -> Settings:
    directory = tmp_path / "directory.toml"
    directory.write_text(
        f"""
[[kommune]]
nr = "1506"
name = "Molde"
[kommune.ke]
name = "KE Molde"
her_id = 99001506
orgnr = "964338531"
adapter = "ke_inbox"

[[kommune]]
nr = "1508"
name = "Ålesund"
[kommune.ke]
name = "KE Ålesund"
her_id = {ALESUND_KE_HER}
orgnr = "944383565"
adapter = "nhn_msh"
[kommune.ke.settings]
base_url = "{service.base_url}"
""",
        "utf-8",
    )
    crl = tmp_path / "ca.crl"
    crl.write_bytes(pki.authority.revocation_list([]).public_bytes(serialization.Encoding.PEM))
    return settings.model_copy(
        update={
            "directory_file": directory,
            "gateway_her_id": GATEWAY_HER,
            "ack_check_interval_seconds": 0.1,
            "nhn_crl_files": [crl],
            **pki.gateway_settings(GATEWAY_HER),
        }
    )


async def listed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    for _ in range(100):
        items: list[dict[str, Any]] = (await client.get("/ops/messages", params=params)).json()[
            "items"
        ]
        if items:
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listed for {params}")


async def read_by_gateway(service: NhnMessageService, nhn_id: str) -> None:
    for _ in range(50):
        if nhn_id not in service.unread(GATEWAY_HER):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway never marked it read")


def notice(seed: int = 3, kommune: str = "1506") -> bytes:
    return notice_xml_body(random.Random(seed), kommune)


async def test_a_notice_through_nhn_is_taken_in_and_delivered(
    client: httpx.AsyncClient, service: NhnMessageService
) -> None:
    nhn_id = service.put_sealed(GATEWAY_HER, notice(), sender_her_id=HOSPITAL_HER)
    items = await listed(client, status=["DELIVERED", "ACKNOWLEDGED"], kommune="1506")
    assert len(items) == 1
    inbox = (await client.get("/ke/1506/inbox")).json()["items"]
    assert [i["id"] for i in inbox] == [items[0]["id"]]
    await read_by_gateway(service, nhn_id)  # marked read once kept
    events = (await client.get(f"/messages/{items[0]['id']}")).json()["events"]
    assert events[0]["actor"] == "adapter:nhn_msh"


async def test_an_unreadable_document_through_nhn_is_kept_rejected(
    client: httpx.AsyncClient, service: NhnMessageService
) -> None:
    service.put_sealed(GATEWAY_HER, b"\x00 not xml at all", sender_her_id=HOSPITAL_HER)
    items = await listed(client, status="REJECTED")
    assert len(items) == 1
    assert items[0]["reason"].startswith("T01")  # opened fine, then not XML


async def test_through_nhn_a_plan_goes_out_signed_and_encrypted_and_its_apprec_comes_back(
    client: httpx.AsyncClient, service: NhnMessageService, pki: SimulatedPki
) -> None:
    """The whole NHN path with CMS both ways: a hospital's notice comes in encrypted to the
    gateway, goes out to Ålesund's KE encrypted to its certificate, and the KE's signed and
    encrypted AppRec acknowledges it."""
    nhn_id = service.put_sealed(GATEWAY_HER, notice(5, "1508"), sender_her_id=HOSPITAL_HER)
    [item] = await listed(client, status="ACKNOWLEDGED", kommune="1508")
    await read_by_gateway(service, nhn_id)
    [kept] = service.kept(ALESUND_KE_HER).values()
    assert item["id"].encode() in kept  # the MsgId the gateway gave it
    stats = service.stats()
    assert stats.sealed == 1  # the one post to the KE came signed and encrypted, and opened
    assert stats.refused_signatures == 0


# --------------------------------------------------------------------------- refused


def with_bad_signature(document: bytes, signer: SimulatedPki, sender_her: int) -> bytes:
    """Signed and encrypted to the gateway, one bit of the signature changed on the way."""
    gateway = signer.identity(GATEWAY_HER)
    inner = pkcs7.pkcs7_decrypt_der(
        seal(document, signer.identity(sender_her), gateway.certificate),
        gateway.certificate,
        gateway.key,
        [],
    )
    info = asn1_cms.ContentInfo.load(inner)
    signer_info = info["content"]["signer_infos"][0]
    signature = bytearray(signer_info["signature"].native)
    signature[-3] ^= 0x10
    signer_info["signature"] = bytes(signature)
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(info.dump(force=True))
        .add_recipient(gateway.certificate)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


async def kept_rejected(
    client: httpx.AsyncClient, service: NhnMessageService, nhn_id: str
) -> dict[str, Any]:
    """The one REJECTED message; the document was marked read only once kept, nothing of it
    went further (no inbox, no delivery), and its receipt says why."""
    [item] = await listed(client, status="REJECTED")
    await read_by_gateway(service, nhn_id)
    assert (await client.get("/ke/1506/inbox")).json()["items"] == []
    assert service.posts == 0
    answer = await client.get(f"/receipts/{item['id']}", headers={"X-Operator": "operator"})
    receipt = answer.json()
    assert receipt["status"]["V"] == "2", receipt
    item["receipt_codes"] = [e["V"] for e in receipt["error"]]
    # an authentication failure: on the audit log too, with its code
    audit = (await client.get("/ops/audit")).json()
    assert [
        (a["actor"], a["reason"])
        for a in audit
        if a["action"] == "refused" and a["target"] == item["id"]
    ] == [("adapter:nhn_msh", f"inbound {','.join(item['receipt_codes'])}")]
    return item


async def test_a_bad_signature_is_answered_s01_and_kept(
    client: httpx.AsyncClient, service: NhnMessageService, pki: SimulatedPki
) -> None:
    body = with_bad_signature(notice(), pki, HOSPITAL_HER)
    nhn_id = service.put_message(
        GATEWAY_HER, body, sender_her_id=HOSPITAL_HER, content_type=CONTENT_TYPE
    )
    item = await kept_rejected(client, service, nhn_id)
    assert item["reason"].startswith("S01")
    assert item["receipt_codes"] == ["S01"]


@pytest.mark.parametrize(
    ("case", "code"),
    [("expired", "S02"), ("other-ca", "S02"), ("other-organisation", "S02"), ("revoked", "S03")],
)
async def test_certificate_faults_are_answered_and_kept(
    client: httpx.AsyncClient,
    service: NhnMessageService,
    pki: SimulatedPki,
    settings: Settings,
    case: str,
    code: str,
) -> None:
    now = dt.datetime.now(dt.UTC)
    hospital = pki.identity(HOSPITAL_HER)
    if case == "expired":
        signer = pki.authority.issue(
            "Helse Møre og Romsdal HF",
            orgnr=HOSPITAL_ORGNR,
            not_before=now - dt.timedelta(days=400),
            not_after=now - dt.timedelta(days=1),
        )
    elif case == "other-ca":
        signer = Authority.create("Another CA").issue("Helse Møre og Romsdal HF")
    elif case == "other-organisation":
        signer = pki.authority.issue("St. Olavs hospital HF", orgnr="883974832")
    else:
        signer = hospital
        [crl_file] = settings.nhn_crl_files
        crl = pki.authority.revocation_list([hospital.certificate])
        crl_file.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    pki.replace(HOSPITAL_HER, signer)
    nhn_id = service.put_sealed(GATEWAY_HER, notice(), sender_her_id=HOSPITAL_HER)
    item = await kept_rejected(client, service, nhn_id)
    assert item["reason"].startswith(code), item["reason"]
    assert item["receipt_codes"] == [code]


async def test_a_plain_document_from_the_health_network_is_answered_s01_and_kept(
    client: httpx.AsyncClient, service: NhnMessageService
) -> None:
    nhn_id = service.put_message(GATEWAY_HER, notice(), sender_her_id=HOSPITAL_HER)
    item = await kept_rejected(client, service, nhn_id)
    assert item["reason"].startswith("S01")
    assert "not signed and encrypted" in item["reason"]


async def test_a_sender_in_another_partys_name_is_answered_s99_and_kept(
    client: httpx.AsyncClient, service: NhnMessageService, pki: SimulatedPki
) -> None:
    """A party with its own valid certificate sends a MsgHead naming the hospital as sender."""
    pki.identity(99100002, orgnr="883974832")
    nhn_id = service.put_sealed(GATEWAY_HER, notice(), sender_her_id=99100002)
    item = await kept_rejected(client, service, nhn_id)
    assert item["reason"].startswith("S99")
