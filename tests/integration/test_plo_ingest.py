"""POST /plo: MsgHead notices through the real broker and store; AppRec answers in XML."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest
from lxml import etree

from gateway.demo.samples import make_notice
from gateway.domain.model import Organisation
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.notice import msghead_to_notice, notice_to_msghead
from mappings.plo.xmlsafe import parse_xml
from mappings.plo.xsd import load_schema_set
from tests.integration.test_pipeline import wait_status
from tests.standards import standards_dir

pytestmark = pytest.mark.integration

XML = {"content-type": "application/xml"}
APPREC_11 = "http://www.kith.no/xmlstds/apprec/2012-02-15"
APPREC_10 = "http://www.kith.no/xmlstds/apprec/2004-11-21"
GATEWAY = Party(Organisation(name="ip-gateway", her_id=99999999))


def msghead_notice(seed: int, kommune_nr: str, msg_id: str | None = None) -> bytes:
    notice = make_notice(random.Random(seed), kommune_nr)
    return to_bytes(notice_to_msghead(notice, msg_id=msg_id or str(uuid.uuid4()), receiver=GATEWAY))


def apprec(response: httpx.Response) -> tuple[str, list[tuple[str, str]]]:
    """(status V, [(error V, OT)]) of an AppRec 1.1 answer, read with plain XPath."""
    assert response.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(response.content)  # our own answer: the test trusts it
    ns = {"a": APPREC_11}
    status = root.xpath("string(a:Status/@V)", namespaces=ns)
    errors = [(e.get("V"), e.get("OT") or "") for e in root.xpath("a:Error", namespaces=ns)]
    return str(status), errors


async def test_xml_notice_flows_to_the_inbox_and_answers_with_apprec(
    client: httpx.AsyncClient,
) -> None:
    msg_id = str(uuid.uuid4())
    sent = make_notice(random.Random(1), "1506")
    body = to_bytes(notice_to_msghead(sent, msg_id=msg_id, receiver=GATEWAY))
    r = await client.post("/plo", content=body, headers=XML)
    assert r.status_code == 202, r.text
    message_id = r.headers["x-message-id"]
    await wait_status(client, message_id, {"DELIVERED"})
    inbox = (await client.get("/ke/1506/inbox")).json()
    assert [i["id"] for i in inbox["items"]] == [message_id]
    # the KE may fetch it as MsgHead XML: valid against the official XSDs, the same notice
    xml = await client.get(f"/ke/1506/inbox/{message_id}", headers={"accept": "application/xml"})
    root = parse_xml(xml.content, max_bytes=10**6)
    assert load_schema_set(standards_dir() / "xsd").errors(root) == []
    notice, envelope = msghead_to_notice(root, allow_synthetic_ids=True)
    assert notice == sent
    assert envelope.msg_id == message_id
    assert envelope.receiver.organisation.her_id == 99001506
    await client.post(f"/ke/1506/inbox/{message_id}/ack")
    await wait_status(client, message_id, {"ACKNOWLEDGED"})

    xml = await client.get(f"/receipts/{message_id}", headers={"accept": "application/xml"})
    status, errors = apprec(xml)
    assert (status, errors) == ("1", [])
    root = etree.fromstring(xml.content)
    # AppRec answers the sender's MsgId
    assert root.xpath("string(a:OriginalMsgId/a:Id)", namespaces={"a": APPREC_11}) == msg_id
    v10 = await client.get(
        f"/receipts/{message_id}?version=1.0", headers={"accept": "application/xml"}
    )
    assert etree.QName(etree.fromstring(v10.content)).namespace == APPREC_10
    # JSON stays the default
    assert (await client.get(f"/receipts/{message_id}")).json()["status"]["V"] == "1"


async def test_resent_msgid_is_not_processed_twice(client: httpx.AsyncClient) -> None:
    body = msghead_notice(2, "1508")
    first = await client.post("/plo", content=body, headers=XML)
    second = await client.post("/plo", content=body, headers=XML)
    assert first.headers["x-message-id"] == second.headers["x-message-id"]
    await wait_status(client, first.headers["x-message-id"], {"DELIVERED"})
    assert len((await client.get("/ke/1508/inbox")).json()["items"]) == 1


def _replace(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body
    return body.replace(old, new, 1)


XXE = (
    b'<?xml version="1.0"?><!DOCTYPE MsgHead [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">&x;</MsgHead>'
)


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        pytest.param(lambda b: b[: len(b) // 2], 400, "T01", id="truncated"),
        pytest.param(lambda b: XXE, 400, "T99", id="xxe"),
        pytest.param(
            lambda b: _replace(b, b"<MsgId>", b"<MsgId>x").replace(b"</MsgId>", b"</MsgId>", 1),
            400,
            "E10",
            id="msgid-not-guid",
        ),
        pytest.param(
            lambda b: _replace(b, b"v1.2 2006-05-24", b"v1.1 2006-02-15"),
            400,
            "T02",  # MIGversion is fixed in the schema: the schema answers first
            id="wrong-migversion",
        ),
        pytest.param(
            lambda b: b.replace(
                b"http://www.kith.no/xmlstds/msghead/2006-05-24",
                b"http://www.kith.no/xmlstds/msghead/2099-01-01",
            ),
            400,
            "T10",
            id="wrong-namespace",
        ),
        pytest.param(
            lambda b: _replace(b, b'V="DIALOG_HELSEFAGLIG"', b'V="LOG_INNLAGT"'),
            400,
            "T10",
            id="plo-logistics-type",
        ),
        pytest.param(
            lambda b: _replace(_replace(b, b"<Behov>", b"<Behovet>"), b"</Behov>", b"</Behovet>"),
            400,
            "T02",
            id="schema",
        ),
    ],
)
async def test_bad_xml_gets_a_precise_apprec_and_is_kept(
    client: httpx.AsyncClient, make: object, status: int, code: str
) -> None:
    assert callable(make)
    r = await client.post("/plo", content=make(msghead_notice(3, "1506")), headers=XML)
    assert r.status_code == status, r.text
    got_status, errors = apprec(r)
    assert got_status == "2"
    assert errors
    assert {e[0] for e in errors} == {code}
    view = (await client.get(f"/messages/{r.headers['x-message-id']}")).json()
    assert view["status"] == "REJECTED"


async def test_real_dialogmelding_sample_is_t10_not_a_crash(client: httpx.AsyncClient) -> None:
    sample = standards_dir() / "samples" / "msghead-dialogmelding-1.1-helsefaglig.xml"
    r = await client.post("/plo", content=sample.read_bytes(), headers=XML)
    assert r.status_code == 400
    assert apprec(r)[1][0][0] == "T10"
    # the person in the sample is not named in the answer
    assert b"13116900216" not in r.content
    assert b"Danser" not in r.content


async def test_oversized_and_not_xml(client: httpx.AsyncClient) -> None:
    big = b"<a>" + b"x" * 300_000 + b"</a>"
    r = await client.post("/plo", content=big, headers=XML)
    assert r.status_code == 413
    assert apprec(r)[1][0][0] == "T99"
    r = await client.post("/plo", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415
    assert apprec(r)[1][0][0] == "T10"
