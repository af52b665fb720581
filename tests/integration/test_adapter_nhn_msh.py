"""The ``nhn_msh`` adapter and its vendor profiles (``sampro``, ``acos``) over real HTTP
against the simulated NHN message service: post, AppRec later in the gateway's unread list,
mark read; the failures a real service has; the documents checked against the official XSDs.
Everything travels signed and encrypted (CMS) with certificates from a test PKI, as on the
health network; the CMS cases themselves are at the end.

Expected values come from the brief's API shape, the standards README (AppRec statuses 8258,
codes 8221, "Transport and identity") and the readable text's labels, not from the adapter's
code.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import HealthCheck, given, settings
from lxml import etree

from adapters import acos, nhn_msh, sampro
from adapters.nhn_msh import NhnMsh
from gateway.cms import CONTENT_TYPE, Identity, open_sealed, seal
from gateway.config import DEFAULT_DIRECTORY, Settings
from gateway.delivery import (
    Acknowledgement,
    AdapterContext,
    AdapterRegistry,
    Delivered,
    Delivery,
    DeliveryFailed,
)
from gateway.delivery_policy import Cause
from gateway.demo.pki import Authority, SimulatedPki
from gateway.demo.platforms.nhn_msh_server import NhnMessageService
from gateway.demo.samples import make_notice
from gateway.directory import load_directory
from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    CoordinatingUnit,
    NeedNotice,
    NoticeKind,
    Organisation,
    PersonName,
)
from gateway.domain.receipt import Receipt, ReceiptStatus
from gateway.store.database import Database
from mappings.plo.apprec import receipt_to_apprec
from mappings.plo.msghead import Party
from mappings.plo.notice import notice_to_msghead
from mappings.plo.xmlsafe import parse_xml
from mappings.plo.xsd import SchemaSet, load_schema_set
from tests.standards import standards_dir
from tests.strategies import need_notices

pytestmark = pytest.mark.integration

GATEWAY_HER = 99000001
KE_HER = 99001506
OTHER_KE_HER = 99001507
MH = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DIA = "http://www.kith.no/xmlstds/dialog/2013-01-23"
IP = "https://ipgw.example/xmlstds/ip-melding/2026-11-23"
XHTML = "http://www.w3.org/1999/xhtml"
APPREC_10 = "http://www.kith.no/xmlstds/apprec/2004-11-21"
NS = {"mh": MH, "dia": DIA, "ip": IP, "h": XHTML}
MARKER = "[forkortet: se fullstendig melding hos avsender]"
TEXT_LIMIT = 4000
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def unit(her_id: int = KE_HER, adapter: str = "nhn_msh") -> CoordinatingUnit:
    return CoordinatingUnit(
        kommune_nr="1506",
        kommune_name="Molde",
        name="Koordinerende enhet, Molde kommune",
        her_id=her_id,
        adapter=adapter,
    )


def notice(seed: int = 1) -> NeedNotice:
    return make_notice(random.Random(seed), "1506")


def delivery(
    base_url: str,
    the_notice: NeedNotice | None = None,
    *,
    message_id: str | None = None,
    her_id: int = KE_HER,
    **extra: Any,
) -> Delivery:
    return Delivery(
        message_id=message_id or str(uuid.uuid4()),
        generation=1,
        content=the_notice or notice(),
        unit=unit(her_id),
        settings={"base_url": base_url, **extra},
    )


def make_pki(tmp_path: Path) -> SimulatedPki:
    """The test CA with key pairs for the gateway and the KEs (one folder per test)."""
    pki = SimulatedPki(tmp_path / "pki")
    pki.ensure(GATEWAY_HER, KE_HER, OTHER_KE_HER)
    return pki


@pytest.fixture
def pki(tmp_path: Path) -> SimulatedPki:
    return make_pki(tmp_path)


@pytest.fixture
def service(pki: SimulatedPki) -> Iterator[NhnMessageService]:
    s = NhnMessageService(pki=pki)
    s.start()
    yield s
    s.stop()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    yield database
    await database.close()


def context_for(db: Database, tmp_path: Path, **overrides: Any) -> AdapterContext:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "gateway_her_id": GATEWAY_HER,
        **make_pki(tmp_path).gateway_settings(GATEWAY_HER),
    }
    values.update(overrides)
    return AdapterContext(settings=Settings(**values), db=db)


@pytest.fixture
def context(db: Database, tmp_path: Path) -> AdapterContext:
    return context_for(db, tmp_path)


@pytest.fixture
async def adapter(context: AdapterContext) -> AsyncIterator[NhnMsh]:
    a = nhn_msh.create(context)
    yield a
    await a.aclose()


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return load_schema_set(standards_dir() / "xsd")


def posted_document(
    service: NhnMessageService, delivered: Delivered, her_id: int = KE_HER
) -> etree._Element:
    """The business document as NHN stored it, fetched over HTTP by its NHN id and opened with
    the receiver's key."""
    assert delivered.remote_ref is not None
    r = httpx.get(f"{service.base_url}/Messages/{delivered.remote_ref}/business-document")
    assert r.status_code == 200
    assert r.json()["contentType"] == CONTENT_TYPE
    sealed = base64.b64decode(r.json()["businessDocument"])
    assert service.pki is not None
    opened = open_sealed(sealed, [service.pki.identity(her_id)], service.pki.trust())
    return parse_xml(opened.content, max_bytes=10**7)


def xpath(root: etree._Element, path: str) -> list[Any]:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    return found


def readable_lines(root: etree._Element) -> dict[str, str]:
    """label -> value of the Dialogmelding's readable text (``<p><b>label: </b>value</p>``)."""
    lines = {}
    for p in xpath(root, "//dia:Notat/dia:TekstNotatInnhold/h:div/h:p"):
        b = p.find(f"{{{XHTML}}}b")
        lines[(b.text or "").strip().rstrip(":")] = b.tail or ""
    return lines


def visible_text(root: etree._Element) -> str:
    """The text as the acos field is assumed to count it: paragraphs, one line break apart."""
    paragraphs = xpath(root, "//dia:Notat/dia:TekstNotatInnhold/h:div/h:p")
    return "\n".join("".join(p.itertext()) for p in paragraphs)


# --------------------------------------------------------------------------- the round trip


async def test_deliver_then_ok_apprec_then_marked_read(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    d = delivery(service.base_url)
    delivered = await adapter.deliver(d)
    assert delivered.acknowledgement is None  # the AppRec comes later
    assert delivered.remote_ref is not None
    assert GUID.match(delivered.remote_ref)
    assert service.received == {d.message_id: 1}

    first = await adapter.poll_acknowledgements()
    assert [(a.message_id, a.ok) for a in first] == [(d.message_id, True)]
    assert first[0].handle is not None
    # not marked yet: a crash here must not lose the answer
    again = await adapter.poll_acknowledgements()
    assert [a.message_id for a in again] == [d.message_id]

    await adapter.mark_handled(first)
    assert await adapter.poll_acknowledgements() == []
    assert service.unread(GATEWAY_HER) == []


async def test_posted_business_document_is_a_valid_msghead_to_the_ke(
    service: NhnMessageService, adapter: NhnMsh, schemas: SchemaSet
) -> None:
    d = delivery(service.base_url)
    root = posted_document(service, await adapter.deliver(d))
    assert schemas.errors(root) == []
    assert xpath(root, "/mh:MsgHead/mh:MsgInfo/mh:MsgId/text()") == [d.message_id]
    receiver = "/mh:MsgHead/mh:MsgInfo/mh:Receiver/mh:Organisation"
    assert xpath(root, f"{receiver}/mh:OrganisationName/text()") == [d.unit.name]
    assert xpath(root, f"{receiver}/mh:Ident[mh:TypeId/@V='HER']/mh:Id/text()") == [str(KE_HER)]
    # structured by default: the Dialogmelding and our BehovForIP
    assert len(xpath(root, "//dia:Dialogmelding")) == 1
    assert len(xpath(root, "//ip:BehovForIP")) == 1


async def test_structured_false_posts_the_dialogmelding_only(
    service: NhnMessageService, adapter: NhnMsh, schemas: SchemaSet
) -> None:
    delivered = await adapter.deliver(delivery(service.base_url, structured=False))
    root = posted_document(service, delivered)
    assert schemas.errors(root) == []
    assert xpath(root, "//ip:BehovForIP") == []
    assert len(xpath(root, "//dia:Dialogmelding")) == 1


async def test_rejecting_apprec_carries_its_code(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    service.set_mode("reject", her_id=KE_HER, code="E35")
    d = delivery(service.base_url)
    await adapter.deliver(d)
    [ack] = await adapter.poll_acknowledgements()
    assert ack.message_id == d.message_id
    assert not ack.ok
    assert [e.code for e in ack.errors] == ["E35"]
    assert "E35" in ack.detail


async def test_mode_is_per_receiver(service: NhnMessageService, adapter: NhnMsh) -> None:
    service.set_mode("reject", her_id=OTHER_KE_HER, code="E21")
    to_molde = delivery(service.base_url)
    to_other = delivery(service.base_url, her_id=OTHER_KE_HER)
    await adapter.deliver(to_molde)
    await adapter.deliver(to_other)
    acks = {a.message_id: a for a in await adapter.poll_acknowledgements()}
    assert acks[to_molde.message_id].ok
    assert [e.code for e in acks[to_other.message_id].errors] == ["E21"]


async def test_ok_with_errors_is_an_acknowledgement_with_the_codes_in_its_detail(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    service.set_mode("ok_with_errors", code="X99")
    d = delivery(service.base_url)
    await adapter.deliver(d)
    [ack] = await adapter.poll_acknowledgements()
    assert ack.ok
    assert "feil i delmelding" in ack.detail
    assert "X99" in ack.detail


async def test_apprec_1_0_is_read_too(service: NhnMessageService, adapter: NhnMsh) -> None:
    service.set_mode("reject", code="E21", apprec_version="1.0")
    d = delivery(service.base_url)
    await adapter.deliver(d)
    [nhn_id] = service.unread(GATEWAY_HER)
    assert etree.QName(parse_xml(service.opened(nhn_id), max_bytes=10**6)).namespace == (APPREC_10)
    [ack] = await adapter.poll_acknowledgements()
    assert (ack.message_id, [e.code for e in ack.errors]) == (d.message_id, ["E21"])


async def test_never_ack_yields_nothing(service: NhnMessageService, adapter: NhnMsh) -> None:
    service.set_mode("never_ack", her_id=KE_HER)
    d = delivery(service.base_url)
    delivered = await adapter.deliver(d)
    assert await adapter.poll_acknowledgements() == []
    assert service.unread(KE_HER) == [delivered.remote_ref]  # the KE never read it
    assert service.apprecs_sent == 0


async def test_same_msgid_twice_is_kept_once_and_answered_twice(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    d = delivery(service.base_url)
    first = await adapter.deliver(d)
    second = await adapter.deliver(dataclasses.replace(d, attempt=1))
    assert first.remote_ref != second.remote_ref  # NHN stores every post
    stats = service.stats()
    assert stats.posts == 2
    assert stats.received == {d.message_id: 2}
    assert stats.distinct == 1
    assert stats.redeliveries == 1
    assert stats.apprecs_sent == 2
    assert stats.duplicates_in_effect == 0
    acks = await adapter.poll_acknowledgements()
    assert [a.message_id for a in acks] == [d.message_id, d.message_id]
    await adapter.mark_handled(acks)
    assert service.unread(GATEWAY_HER) == []


@pytest.mark.parametrize("profile", [nhn_msh, acos])
async def test_same_notice_under_two_msgids_is_a_duplicate_in_effect(
    service: NhnMessageService, context: AdapterContext, profile: Any
) -> None:
    """The counter the gateway's dedupe is judged by: one logical message, two MsgIds."""
    a: NhnMsh = profile.create(context)
    try:
        same = notice(7)
        await a.deliver(delivery(service.base_url, same))
        await a.deliver(delivery(service.base_url, notice(8)))
        assert service.duplicates_in_effect == 0
        await a.deliver(delivery(service.base_url, same))
        assert service.distinct == 3
        assert service.duplicates_in_effect == 1
    finally:
        await a.aclose()


async def test_stats_endpoint(service: NhnMessageService, adapter: NhnMsh) -> None:
    d = delivery(service.base_url)
    await adapter.deliver(d)
    stats = httpx.get(f"{service.base_url}/_sim/stats").json()
    assert stats["posts"] == 1
    assert stats["received"] == {d.message_id: 1}
    assert stats["apprecsSent"] == 1


async def test_apprec_endpoints_let_a_receiver_answer_by_hand(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    service.set_mode("never_ack")
    d = delivery(service.base_url)
    delivered = await adapter.deliver(d)
    r = httpx.post(
        f"{service.base_url}/Messages/{delivered.remote_ref}/apprec/{KE_HER}",
        json={"appRecStatus": "Rejected", "appRecErrorList": [{"errorCode": "E36"}]},
    )
    assert r.status_code == 201
    info = httpx.get(f"{service.base_url}/Messages/{delivered.remote_ref}/apprec").json()
    assert [(i["receiverHerId"], i["appRecStatus"]) for i in info] == [(KE_HER, "2")]
    [ack] = await adapter.poll_acknowledgements()
    assert (ack.message_id, [e.code for e in ack.errors]) == (d.message_id, ["E36"])


# --------------------------------------------------------------------------- failures


async def test_unavailable_is_a_retryable_server_error(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    service.set_mode("unavailable")
    with pytest.raises(DeliveryFailed) as info:
        await adapter.deliver(delivery(service.base_url))
    assert info.value.cause is Cause.SERVER_ERROR
    assert info.value.retryable
    assert service.distinct == 0
    service.set_mode("ok")
    await adapter.deliver(delivery(service.base_url))
    assert service.distinct == 1


async def test_stopped_service_is_a_retryable_connection_failure(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    await adapter.deliver(delivery(service.base_url))  # a pooled connection exists
    service.stop()
    try:
        with pytest.raises(DeliveryFailed) as info:
            await adapter.deliver(delivery(service.base_url))
        assert info.value.cause is Cause.CONNECTION
        assert info.value.retryable
        # a base that cannot be polled costs a warning, not the other answers
        assert await adapter.poll_acknowledgements() == []
    finally:
        service.start()
    assert len(await adapter.poll_acknowledgements()) == 1


async def test_slow_service_times_out_and_its_late_apprec_is_still_collected(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    service.set_mode("slow", delay=0.6)
    d = delivery(service.base_url, timeout_seconds=0.1)
    with pytest.raises(DeliveryFailed) as info:
        await adapter.deliver(d)
    assert info.value.cause is Cause.TIMEOUT
    assert info.value.retryable
    # the service stored it after all; its AppRec is collected without another delivery
    deadline = dt.datetime.now() + dt.timedelta(seconds=5)
    acks: list[Acknowledgement] = []
    while not acks and dt.datetime.now() < deadline:
        acks = await adapter.poll_acknowledgements()
    assert [a.message_id for a in acks] == [d.message_id]


async def test_missing_gateway_her_id_is_misconfigured(
    service: NhnMessageService, db: Database, tmp_path: Path
) -> None:
    a = nhn_msh.create(context_for(db, tmp_path, gateway_her_id=None))
    try:
        with pytest.raises(DeliveryFailed) as info:
            await a.deliver(delivery(service.base_url))
        assert info.value.cause is Cause.MISCONFIGURED
        assert not info.value.retryable
        assert service.posts == 0
        assert await a.poll_acknowledgements() == []
    finally:
        await a.aclose()


@pytest.mark.parametrize(
    "settings_",
    [
        {},
        {"base_url": ""},
        {"base_url": "http://x", "structured": "yes"},
        {"base_url": "http://x", "encryption": "aes"},
        {"base_url": "http://x", "encryption_cert": ""},
    ],
    ids=["no-base", "empty-base", "structured-not-bool", "encryption-unknown", "empty-cert"],
)
async def test_bad_settings_are_misconfigured(adapter: NhnMsh, settings_: dict[str, Any]) -> None:
    d = dataclasses.replace(delivery("unused"), settings=settings_)
    with pytest.raises(DeliveryFailed) as info:
        await adapter.deliver(d)
    assert info.value.cause is Cause.MISCONFIGURED
    assert not info.value.retryable


async def test_wrong_path_is_a_final_client_error(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    with pytest.raises(DeliveryFailed) as info:
        await adapter.deliver(delivery(f"{service.base_url}/no-such-api"))
    assert info.value.cause is Cause.CLIENT_ERROR
    assert not info.value.retryable


async def test_no_person_data_in_any_failure_detail(
    service: NhnMessageService, context: AdapterContext
) -> None:
    base = notice(3)
    the_notice = base.model_copy(
        update={
            "patient": base.patient.model_copy(
                update={"name": PersonName(given="Ǿzzyxa", family="Qwertøvik")}
            ),
            "consent": ConsentAttestation(
                given_by=ConsentGiver.NEXT_OF_KIN,
                given_on=dt.date(2026, 11, 1),
                lacks_capacity_reason="Ǿ" + "langvarig " * 500,
            ),
        }
    )
    secrets_ = [
        the_notice.patient.person_id,
        "Ǿzzyxa",
        "Qwertøvik",
        the_notice.need[:20],
        "langvarig",
    ]
    failures: list[DeliveryFailed] = []
    nhn = nhn_msh.create(context)
    profile = acos.create(context)
    try:
        service.set_mode("unavailable")
        for a, base_url in (
            (nhn, service.base_url),
            (nhn, f"{service.base_url}/nope"),
            (nhn, "http://127.0.0.1:9"),
            (profile, service.base_url),  # too long for acos: refused before posting
        ):
            with pytest.raises(DeliveryFailed) as info:
                await a.deliver(delivery(base_url, the_notice))
            failures.append(info.value)
    finally:
        await nhn.aclose()
        await profile.aclose()
    assert {f.cause for f in failures} == {
        Cause.SERVER_ERROR,
        Cause.CLIENT_ERROR,
        Cause.CONNECTION,
    }
    for failure in failures:
        for secret in secrets_:
            assert secret not in failure.detail
            assert secret not in str(failure)


# --------------------------------------------------------------------------- the unread list


def apprec_for(
    msg_id: str,
    status: ReceiptStatus = ReceiptStatus.OK,
    *,
    her_id: int = KE_HER,
    orgnr: str | None = None,
) -> bytes:
    return receipt_to_apprec(
        Receipt(
            generated_at=dt.datetime.now(dt.UTC),
            sender=Organisation(name="KE", her_id=her_id, orgnr=orgnr),
            receiver=None,
            status=status,
            original_message_type="DIALOG_HELSEFAGLIG",
            original_message_id=msg_id,
            original_issued_at=None,
        )
    )


async def test_other_documents_are_handed_in_not_dropped_and_broken_apprecs_kept(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    adapter.remember({"base_url": service.base_url})
    not_apprec = service.put_sealed(
        GATEWAY_HER, b"<Dialogmelding xmlns='x'/>", sender_her_id=KE_HER
    )
    not_xml = service.put_sealed(GATEWAY_HER, b"\x00 not xml", sender_her_id=KE_HER)
    good = apprec_for(str(uuid.uuid4()))
    broken = service.put_sealed(
        GATEWAY_HER, re.sub(rb"<Status[^>]*/>", b"", good), sender_her_id=KE_HER
    )
    answered = str(uuid.uuid4())
    service.put_sealed(GATEWAY_HER, apprec_for(answered), sender_her_id=KE_HER)

    acks = await adapter.poll_acknowledgements()
    assert [a.message_id for a in acks] == [answered]
    inbound = adapter.take_inbound()
    # opened (decrypted, signature checked) and handed in for the core to read or refuse
    assert sorted(d.body for d in inbound) == sorted(
        [b"<Dialogmelding xmlns='x'/>", b"\x00 not xml"]
    )
    assert all(not d.refused for d in inbound)
    assert adapter.take_inbound() == []  # taken once
    # nothing is marked read before the core has kept it
    unread = service.unread(GATEWAY_HER)
    assert {not_apprec, not_xml, broken} <= set(unread)
    await adapter.mark_handled(acks)
    await adapter.mark_inbound_handled(inbound)
    assert service.unread(GATEWAY_HER) == [broken]  # an AppRec is never thrown away


async def test_one_poll_per_base_and_every_base_polled(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki
) -> None:
    other = NhnMessageService(pki=pki)
    other.start()
    try:
        here = [delivery(service.base_url), delivery(service.base_url, her_id=OTHER_KE_HER)]
        there = delivery(other.base_url + "/")
        for d in [*here, there]:
            await adapter.deliver(d)
        other.stop()  # one base down: the other's answers still come
        acks = await adapter.poll_acknowledgements()
        assert sorted(a.message_id for a in acks) == sorted(d.message_id for d in here)
        assert service.list_requests == 1
        other.start()
        acks = await adapter.poll_acknowledgements()
        assert there.message_id in {a.message_id for a in acks}
        assert other.list_requests == 1
    finally:
        other.stop()


async def test_bases_from_the_directory_are_polled_after_a_restart(
    service: NhnMessageService, db: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "directory.toml"
    directory.write_text(
        f"""
[[kommune]]
nr = "1506"
name = "Molde"
[kommune.ke]
name = "Koordinerende enhet, Molde kommune"
her_id = {KE_HER}
adapter = "acos"
[kommune.ke.settings]
base_url = "{service.base_url}"
""",
        encoding="utf-8",
    )
    context = context_for(db, tmp_path, directory_file=directory)
    before = acos.create(context)
    d = delivery(service.base_url)
    await before.deliver(d)
    await before.aclose()
    # a fresh process: nothing delivered yet, the AppRec is still collected
    after = acos.create(context)
    try:
        assert [a.message_id for a in await after.poll_acknowledgements()] == [d.message_id]
        plain = nhn_msh.create(context)  # the entry is acos's, not nhn_msh's
        assert plain.bases == {}
        await plain.aclose()
    finally:
        await after.aclose()


# --------------------------------------------------------------------------- tokens


async def test_bearer_token_from_client_credentials_and_refreshed_after_401(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch, pki: SimulatedPki
) -> None:
    service = NhnMessageService(require_token=True, pki=pki)
    service.start()
    a = nhn_msh.create(context)
    try:
        monkeypatch.setenv("TEST_NHN_SECRET", service.client_secret)
        auth: dict[str, Any] = {
            "token_url": service.token_url,
            "client_id": "ipgw",
            "scope": "nhn:msh",
            "client_secret_env": "TEST_NHN_SECRET",
        }
        await a.deliver(delivery(service.base_url, **auth))
        assert service.token_requests == 1
        service.revoke_tokens()
        d = delivery(service.base_url, **auth)
        await a.deliver(d)
        assert service.token_requests == 2
        assert d.message_id in {x.message_id for x in await a.poll_acknowledgements()}
        with pytest.raises(DeliveryFailed) as info:
            await a.deliver(delivery(service.base_url))  # no token settings
        assert info.value.cause is Cause.NOT_AUTHORISED
        assert not info.value.retryable
    finally:
        await a.aclose()
        service.stop()


# --------------------------------------------------------------------------- profiles


async def test_profiles_load_through_the_registry(context: AdapterContext) -> None:
    registry = AdapterRegistry(context)
    try:
        assert [registry.get(n).name for n in ("nhn_msh", "sampro", "acos")] == [
            "nhn_msh",
            "sampro",
            "acos",
        ]
    finally:
        await registry.aclose()


async def test_sampro_posts_the_structured_content(
    service: NhnMessageService, context: AdapterContext, schemas: SchemaSet
) -> None:
    a = sampro.create(context)
    try:
        root = posted_document(service, await a.deliver(delivery(service.base_url)))
        assert schemas.errors(root) == []
        assert len(xpath(root, "//ip:BehovForIP")) == 1
        assert len(xpath(root, "//dia:Dialogmelding")) == 1
        with pytest.raises(DeliveryFailed) as info:
            await a.deliver(delivery(service.base_url, structured=False))
        assert info.value.cause is Cause.MISCONFIGURED
        [ack] = await a.poll_acknowledgements()
        assert ack.detail.endswith("(via sampro)")
    finally:
        await a.aclose()


async def test_acos_posts_the_dialogmelding_only(
    service: NhnMessageService, context: AdapterContext, schemas: SchemaSet
) -> None:
    a = acos.create(context)
    try:
        the_notice = notice(2)
        delivered = await a.deliver(delivery(service.base_url, the_notice))
        root = posted_document(service, delivered)
        assert schemas.errors(root) == []
        assert xpath(root, "//ip:BehovForIP") == []
        assert readable_lines(root)["Avsenders referanse"] == the_notice.sender_message_id
        assert "shortened" not in delivered.detail
        with pytest.raises(DeliveryFailed) as info:
            await a.deliver(delivery(service.base_url, structured=True))
        assert info.value.cause is Cause.MISCONFIGURED
    finally:
        await a.aclose()


SERVICE_TEXT = {
    NoticeKind.INDIVIDUELL_PLAN: "individuell plan",
    NoticeKind.KOORDINATOR: "koordinator",
    NoticeKind.BARNEKOORDINATOR: "barnekoordinator",
}
#: every element of BehovForIP, and where the text-only document carries it
BEHOV_FOR_IP_IN_TEXT = {
    "AvsendersMeldingsId": "Avsenders referanse",
    "Tjeneste": "Ønsket",
    "Behov": "Behov",
    "Haster": "Haster",
    "PaarorendeDeltar": "Pårørende deltar",
    "HarKoordinator": "Har allerede koordinator fra kommunen",
    "Tolkespraak": "Trenger tolk, språk",
    "Kontakt": "Kontaktperson",
    "Avdeling": "Avsender",
    "Samtykke": "Samtykke",
    "GittAv": "Samtykke",
    "Dato": "Samtykke",
    "ManglendeSamtykkekompetanse": "Hvorfor pasienten ikke kan samtykke selv",
    "Referanse": "Samtykkets referanse",
    "Navn": "Kontaktperson",
    "Telefon": "Kontaktperson",
    # routing for the gateway, not for a reader (adapters/acos.py says why)
    "Avsenderendepunkt": None,
    # a department with HER-id or organisasjonsnummer stands in MsgHead itself
    "HerId": None,
    "Organisasjonsnummer": None,
}
RECEIVER = Party(Organisation(name="Koordinerende enhet, Molde kommune", her_id=KE_HER))


def test_every_structured_element_has_a_place_in_the_text() -> None:
    """A new element in BehovForIP must be given a place in acos's text (or a reason)."""
    full = notice(4).model_copy(
        update={
            "existing_coordinator": True,
            "interpreter_language": "ar",
            "consent": ConsentAttestation(
                given_by=ConsentGiver.NEXT_OF_KIN,
                given_on=dt.date(2026, 11, 1),
                lacks_capacity_reason="bevisstløs",
                reference="ref-1",
            ),
            "source_endpoint": "https://fhir.example/ip",
            "sender": notice(4).sender.model_copy(
                update={"department": Organisation(name="Avdeling uten HER-id")}
            ),
        }
    )
    root = notice_to_msghead(full, msg_id=str(uuid.uuid4()), receiver=RECEIVER)
    names = {etree.QName(e).localname for e in xpath(root, "//ip:BehovForIP//*")}
    assert names <= set(BEHOV_FOR_IP_IN_TEXT), names - set(BEHOV_FOR_IP_IN_TEXT)
    lines = readable_lines(acos.document(full, str(uuid.uuid4()), RECEIVER, False).root)
    for label in {v for k, v in BEHOV_FOR_IP_IN_TEXT.items() if k in names and v}:
        assert label in lines, label


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(need_notices())
def test_acos_text_holds_every_fact(the_notice: NeedNotice) -> None:
    msg_id = str(uuid.uuid4())
    built = acos.document(the_notice, msg_id, RECEIVER, False)
    root = parse_xml(etree.tostring(built.root), max_bytes=10**7)  # as the receiver reads it
    assert _schemas().errors(root) == []
    assert xpath(root, "//ip:BehovForIP") == []
    assert built.note is None  # generated needs are short: nothing shortened
    lines = readable_lines(root)
    n = the_notice
    assert lines["Ønsket"] == ", ".join(SERVICE_TEXT[k] for k in n.requested)
    assert lines["Behov"] == n.need
    assert lines["Haster"] == ("ja" if n.urgent else "nei")
    assert lines["Pårørende deltar"] == ("ja" if n.next_of_kin_involved else "nei")
    assert ("Har allerede koordinator fra kommunen" in lines) == n.existing_coordinator
    assert lines.get("Trenger tolk, språk") == n.interpreter_language
    if n.consent is None:
        assert "ikke registrert" in lines["Samtykke"]
    else:
        assert n.consent.given_on.isoformat() in lines["Samtykke"]
    reason = n.consent.lacks_capacity_reason if n.consent else None
    reference = n.consent.reference if n.consent else None
    assert lines.get("Hvorfor pasienten ikke kan samtykke selv") == reason
    assert lines.get("Samtykkets referanse") == reference
    assert lines["Avsenders referanse"] == n.sender_message_id
    assert n.sender.organisation.name in lines["Avsender"]
    if n.sender.department is not None:
        assert n.sender.department.name in lines["Avsender"]
    if n.sender.contact is not None:
        assert n.sender.contact.name in lines["Kontaktperson"]
        assert (n.sender.contact.phone or "") in lines["Kontaktperson"]
    else:
        assert "Kontaktperson" not in lines


_SCHEMA_CACHE: list[SchemaSet] = []


def _schemas() -> SchemaSet:
    if not _SCHEMA_CACHE:
        _SCHEMA_CACHE.append(load_schema_set(standards_dir() / "xsd"))
    return _SCHEMA_CACHE[0]


def _long_need(words: int) -> str:
    rng = random.Random(words)
    return " ".join(
        rng.choice(["rehabilitering", "bolig", "avlastning", "fysioterapi"]) for _ in range(words)
    )


async def test_acos_shortens_only_the_need_and_says_so(
    service: NhnMessageService, context: AdapterContext, schemas: SchemaSet
) -> None:
    base = notice(5).model_copy(
        update={
            "consent": ConsentAttestation(
                given_by=ConsentGiver.NEXT_OF_KIN,
                given_on=dt.date(2026, 11, 1),
                lacks_capacity_reason="Pasienten er bevisstløs",
                reference="SAM-77",
            )
        }
    )
    long_need = _long_need(600)  # about 7000 characters
    the_notice = base.model_copy(update={"need": long_need})
    a = acos.create(context)
    try:
        delivered = await a.deliver(delivery(service.base_url, the_notice))
    finally:
        await a.aclose()
    assert "shortened" in delivered.detail
    root = posted_document(service, delivered)
    assert schemas.errors(root) == []
    text = visible_text(root)
    assert len(text) <= TEXT_LIMIT
    assert len(text) > TEXT_LIMIT - 30  # cut as late as a word boundary allows
    lines = readable_lines(root)
    need = lines["Behov"]
    assert need.endswith(" " + MARKER)
    kept = need.removesuffix(" " + MARKER)
    assert long_need.startswith(kept)
    assert long_need[len(kept)] == " "  # at a word boundary
    # every other fact is whole
    full = readable_lines(acos.document(base, str(uuid.uuid4()), RECEIVER, False).root)
    assert {k: v for k, v in lines.items() if k != "Behov"} == {
        k: v for k, v in full.items() if k != "Behov"
    }


def test_acos_text_that_fits_exactly_is_not_touched() -> None:
    base = notice(6)
    short = acos.document(base, str(uuid.uuid4()), RECEIVER, False)
    room = TEXT_LIMIT - len(visible_text(short.root))
    fits = base.model_copy(update={"need": base.need + " x" * ((room) // 2)})
    built = acos.document(fits, str(uuid.uuid4()), RECEIVER, False)
    assert len(visible_text(built.root)) <= TEXT_LIMIT
    assert built.note is None
    assert readable_lines(built.root)["Behov"] == fits.need
    one_more = fits.model_copy(update={"need": fits.need + " yy"})
    over = acos.document(one_more, str(uuid.uuid4()), RECEIVER, False)
    assert over.note is not None
    assert MARKER in readable_lines(over.root)["Behov"]


def test_acos_refuses_when_the_facts_alone_do_not_fit() -> None:
    base = notice(6)
    the_notice = base.model_copy(
        update={
            "consent": ConsentAttestation(
                given_by=ConsentGiver.NEXT_OF_KIN,
                given_on=dt.date(2026, 11, 1),
                lacks_capacity_reason="x" * TEXT_LIMIT,
            )
        }
    )
    with pytest.raises(DeliveryFailed) as info:
        acos.document(the_notice, str(uuid.uuid4()), RECEIVER, False)
    assert info.value.cause is Cause.CLIENT_ERROR
    assert info.value.code == "T99"
    assert not info.value.retryable


# --------------------------------------------------------------------------- CMS: outbound


def stored(service: NhnMessageService, delivered: Delivered) -> tuple[bytes, str]:
    """What the service holds for the post, as posted, and its content type."""
    assert delivered.remote_ref is not None
    return service.document(delivered.remote_ref), service.content_type(delivered.remote_ref)


async def test_outbound_travels_signed_and_encrypted_and_opens_to_the_msghead(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki, schemas: SchemaSet
) -> None:
    the_notice = notice(11)
    d = delivery(service.base_url, the_notice)
    delivered = await adapter.deliver(d)
    assert "signed and encrypted with CMS" in delivered.detail
    body, content_type = stored(service, delivered)
    assert content_type == CONTENT_TYPE
    # nothing of the MsgHead in clear
    for clear in (b"MsgHead", d.message_id.encode(), the_notice.patient.person_id.encode()):
        assert clear not in body
    # opened independently of gateway/cms.py: the receiver's key decrypts (cryptography), and
    # the SignedData inside (asn1crypto) carries the MsgHead and the gateway's certificate
    ke = pki.identity(KE_HER)
    signed = pkcs7.pkcs7_decrypt_der(body, ke.certificate, ke.key, [])
    sd = asn1_cms.ContentInfo.load(signed)["content"]
    msghead = sd["encap_content_info"]["content"].native
    assert [c.chosen.dump() for c in sd["certificates"]] == [
        pki.identity(GATEWAY_HER).certificate.public_bytes(serialization.Encoding.DER)
    ]
    # exactly the MsgHead the receiver's system keeps, valid, with our MsgId
    assert msghead == service.kept(KE_HER)[d.message_id]
    root = parse_xml(msghead, max_bytes=10**7)
    assert schemas.errors(root) == []
    assert xpath(root, "/mh:MsgHead/mh:MsgInfo/mh:MsgId/text()") == [d.message_id]
    # and the signature holds for the receiver (the simulated KE opened and answered OK)
    assert service.stats().sealed == 1
    [ack] = await adapter.poll_acknowledgements()
    assert ack.ok


async def test_another_receiver_cannot_open_it(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki
) -> None:
    delivered = await adapter.deliver(delivery(service.base_url))
    body, _ = stored(service, delivered)
    other = pki.identity(OTHER_KE_HER)
    with pytest.raises(ValueError):  # noqa: PT011 -- cryptography's own refusal
        pkcs7.pkcs7_decrypt_der(body, other.certificate, other.key, [])


async def test_the_ke_answers_signed_and_encrypted_to_the_gateway(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    d = delivery(service.base_url)
    await adapter.deliver(d)
    [nhn_id] = service.unread(GATEWAY_HER)
    assert service.content_type(nhn_id) == CONTENT_TYPE
    assert b"AppRec" not in service.document(nhn_id)
    [ack] = await adapter.poll_acknowledgements()
    assert (ack.message_id, ack.ok) == (d.message_id, True)


async def test_a_receiver_without_a_certificate_is_a_final_configuration_error(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    no_cert_her = 99001599
    with pytest.raises(DeliveryFailed) as info:
        await adapter.deliver(delivery(service.base_url, her_id=no_cert_her))
    assert info.value.cause is Cause.MISCONFIGURED
    assert not info.value.retryable
    assert str(no_cert_her) in info.value.detail
    assert "IPGW_NHN_CERT_DIR" in info.value.detail
    assert "encryption_cert" in info.value.detail
    assert service.posts == 0  # nothing sent in clear instead


async def test_encryption_cert_setting_comes_first_and_is_relative_to_the_directory(
    service: NhnMessageService, pki: SimulatedPki, db: Database, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "directory" / "certs"
    elsewhere.mkdir(parents=True)
    (elsewhere / "ke.pem").write_bytes(pki.cert_file(KE_HER).read_bytes())
    context = context_for(
        db, tmp_path, directory_file=tmp_path / "directory" / "directory.toml", nhn_cert_dir=None
    )
    a = nhn_msh.create(context)
    try:
        delivered = await a.deliver(delivery(service.base_url, encryption_cert="certs/ke.pem"))
        assert stored(service, delivered)[1] == CONTENT_TYPE
        # a path to a file that is not there is said, not guessed around
        with pytest.raises(DeliveryFailed) as info:
            await a.deliver(delivery(service.base_url, encryption_cert="certs/missing.pem"))
        assert info.value.cause is Cause.MISCONFIGURED
        assert "missing.pem" in info.value.detail
    finally:
        await a.aclose()


async def test_an_expired_receiver_certificate_is_a_final_configuration_error(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki
) -> None:
    now = dt.datetime.now(dt.UTC)
    pki.replace(
        KE_HER,
        pki.authority.issue(
            "KE", not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=2)
        ),
    )
    with pytest.raises(DeliveryFailed) as info:
        await adapter.deliver(delivery(service.base_url))
    assert info.value.cause is Cause.MISCONFIGURED
    assert "expired" in info.value.detail
    assert "S02" in info.value.detail
    assert service.posts == 0


async def test_the_gateways_expired_certificate_is_a_final_configuration_error(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki
) -> None:
    """Every receiver would refuse it (S02): said to the operator at once instead."""
    now = dt.datetime.now(dt.UTC)
    pki.replace(
        GATEWAY_HER,
        pki.authority.issue(
            "ip-gateway",
            not_before=now - dt.timedelta(days=400),
            not_after=now - dt.timedelta(days=2),
        ),
    )
    with pytest.raises(DeliveryFailed) as info:
        await adapter.deliver(delivery(service.base_url))
    assert info.value.cause is Cause.MISCONFIGURED
    assert not info.value.retryable
    assert "gateway's signing" in info.value.detail
    assert "expired" in info.value.detail
    assert service.posts == 0


async def test_the_gateway_without_its_signing_key_does_not_post(
    service: NhnMessageService, db: Database, tmp_path: Path
) -> None:
    a = nhn_msh.create(context_for(db, tmp_path, nhn_signing_key=None))
    try:
        with pytest.raises(DeliveryFailed) as info:
            await a.deliver(delivery(service.base_url))
        assert info.value.cause is Cause.MISCONFIGURED
        assert "IPGW_NHN_SIGNING_KEY" in info.value.detail
        assert service.posts == 0
    finally:
        await a.aclose()


async def test_encryption_none_posts_plain_and_takes_the_plain_answer(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    d = delivery(service.base_url, encryption="none")
    delivered = await adapter.deliver(d)
    assert 'encryption = "none"' in delivered.detail
    body, content_type = stored(service, delivered)
    assert content_type == "application/xml"
    assert parse_xml(body, max_bytes=10**7).tag == f"{{{MH}}}MsgHead"
    [nhn_id] = service.unread(GATEWAY_HER)
    assert service.content_type(nhn_id) == "application/xml"  # answered as it came
    [ack] = await adapter.poll_acknowledgements()
    assert ack.message_id == d.message_id


async def test_a_receiver_that_does_not_trust_our_ca_answers_s02(
    service: NhnMessageService, db: Database, tmp_path: Path, pki: SimulatedPki
) -> None:
    """The gateway trusts a second CA (its own certificate's), the KE does not: the KE's
    system refuses the document with S02 in a (signed, encrypted) AppRec."""
    other = Authority.create("Another CA")
    ours = other.issue("ip-gateway", orgnr="974760673")
    key_file, cert_file, bundle = (tmp_path / n for n in ("gw.key", "gw.pem", "cas.pem"))
    key_file.write_bytes(
        ours.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(ours.certificate.public_bytes(serialization.Encoding.PEM))
    bundle.write_bytes(
        pki.ca_file.read_bytes() + other.certificate.public_bytes(serialization.Encoding.PEM)
    )
    a = nhn_msh.create(
        context_for(
            db,
            tmp_path,
            nhn_signing_key=key_file,
            nhn_signing_cert=cert_file,
            nhn_trusted_ca=bundle,
            # the KE answers to the gateway's certificate in the PKI; we decrypt with that one
            nhn_encryption_key=pki.key_file(GATEWAY_HER),
            nhn_encryption_cert=pki.cert_file(GATEWAY_HER),
        )
    )
    try:
        d = delivery(service.base_url)
        await a.deliver(d)
        assert service.kept(KE_HER) == {}
        assert service.stats().refused_signatures == 1
        [ack] = await a.poll_acknowledgements()
        assert ack.message_id == d.message_id
        assert [e.code for e in ack.errors] == ["S02"]
    finally:
        await a.aclose()


# --------------------------------------------------------------------------- CMS: inbound


def tampered_signature(document: bytes, signer: Identity, recipient: Identity) -> bytes:
    """``document`` signed and encrypted properly, except that one bit of the signature was
    changed on the way."""
    info = asn1_cms.ContentInfo.load(
        asn1_cms.ContentInfo.load(
            pkcs7.pkcs7_decrypt_der(
                seal(document, signer, recipient.certificate),
                recipient.certificate,
                recipient.key,
                [],
            )
        ).dump()
    )
    signer_info = info["content"]["signer_infos"][0]
    signature = bytearray(signer_info["signature"].native)
    signature[5] ^= 0x01
    signer_info["signature"] = bytes(signature)
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(info.dump(force=True))
        .add_recipient(recipient.certificate)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


async def refused_inbound(adapter: NhnMsh, service: NhnMessageService) -> list[str]:
    """The codes of what the adapter hands in refused; checks that nothing was acknowledged
    and that each is marked read once handed over (kept by the core), not before."""
    assert await adapter.poll_acknowledgements() == []
    inbound = adapter.take_inbound()
    unread = set(service.unread(GATEWAY_HER))
    assert {d.handle.rsplit("|", 1)[1] for d in inbound} <= unread
    await adapter.mark_inbound_handled(inbound)
    assert service.unread(GATEWAY_HER) == []
    return [e.code for d in inbound for e in d.refused]


async def test_inbound_bad_signature_is_refused_s01_and_kept_as_it_came(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki
) -> None:
    adapter.remember({"base_url": service.base_url})
    body = tampered_signature(
        apprec_for(str(uuid.uuid4())), pki.identity(KE_HER), pki.identity(GATEWAY_HER)
    )
    service.put_message(GATEWAY_HER, body, sender_her_id=KE_HER, content_type=CONTENT_TYPE)
    await adapter.poll_acknowledgements()
    [document] = adapter.take_inbound()
    assert [e.code for e in document.refused] == ["S01"]
    assert document.body == body  # the document as it came, for the operator
    assert document.content_type == CONTENT_TYPE


@pytest.mark.parametrize(
    ("case", "code"),
    [("expired", "S02"), ("other-ca", "S02"), ("not-for-signing", "S02"), ("plain", "S01")],
)
async def test_inbound_certificate_faults_are_refused(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki, case: str, code: str
) -> None:
    adapter.remember({"base_url": service.base_url})
    now = dt.datetime.now(dt.UTC)
    signers = {
        "expired": lambda: pki.authority.issue(
            "KE", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
        ),
        "other-ca": lambda: Authority.create("Another CA").issue("KE"),
        "not-for-signing": lambda: pki.authority.issue("KE", sign=False),
    }
    apprec = apprec_for(str(uuid.uuid4()))
    if case == "plain":
        service.put_message(GATEWAY_HER, apprec, sender_her_id=KE_HER)
    else:
        pki.replace(KE_HER, signers[case]())
        service.put_sealed(GATEWAY_HER, apprec, sender_her_id=KE_HER)
    assert await refused_inbound(adapter, service) == [code]


async def test_inbound_revoked_certificate_is_refused_s03(
    service: NhnMessageService, pki: SimulatedPki, db: Database, tmp_path: Path
) -> None:
    crl_file = tmp_path / "ca.crl"
    crl = pki.authority.revocation_list([pki.identity(KE_HER).certificate])
    crl_file.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    a = nhn_msh.create(context_for(db, tmp_path, nhn_crl_files=[crl_file]))
    try:
        a.remember({"base_url": service.base_url})
        service.put_sealed(GATEWAY_HER, apprec_for(str(uuid.uuid4())), sender_her_id=KE_HER)
        service.put_sealed(
            GATEWAY_HER, apprec_for(str(uuid.uuid4()), her_id=OTHER_KE_HER),
            sender_her_id=OTHER_KE_HER,
        )  # fmt: skip
        acks = await a.poll_acknowledgements()
        assert len(acks) == 1  # the other KE's certificate is not on the list
        assert [e.code for d in a.take_inbound() for e in d.refused] == ["S03"]
    finally:
        await a.aclose()


async def test_inbound_sender_that_is_not_the_transport_sender_is_refused_s99(
    service: NhnMessageService, adapter: NhnMsh
) -> None:
    """Another KE, with its own valid certificate, sends an AppRec in KE_HER's name."""
    adapter.remember({"base_url": service.base_url})
    service.put_sealed(
        GATEWAY_HER, apprec_for(str(uuid.uuid4()), her_id=KE_HER), sender_her_id=OTHER_KE_HER
    )
    assert await refused_inbound(adapter, service) == ["S99"]


async def test_inbound_certificate_of_another_organisation_is_refused_s02(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki
) -> None:
    adapter.remember({"base_url": service.base_url})
    pki.replace(KE_HER, pki.authority.issue("KE", orgnr="974760673"))
    service.put_sealed(
        GATEWAY_HER, apprec_for(str(uuid.uuid4()), orgnr="964338531"), sender_her_id=KE_HER
    )
    assert await refused_inbound(adapter, service) == ["S02"]
    # the AppRec naming the certificate's organisation is still refused: the directory lists
    # another organisation for the KE's HER-id
    service.put_sealed(
        GATEWAY_HER, apprec_for(str(uuid.uuid4()), orgnr="974760673"), sender_her_id=KE_HER
    )
    assert await refused_inbound(adapter, service) == ["S02"]
    # a certificate for the organisation the directory lists is fine
    listed = load_directory(DEFAULT_DIRECTORY).orgnr_of_her_id(KE_HER)
    assert listed is not None
    pki.replace(KE_HER, pki.authority.issue("KE", orgnr=listed))
    answered = str(uuid.uuid4())
    service.put_sealed(GATEWAY_HER, apprec_for(answered, orgnr=listed), sender_her_id=KE_HER)
    assert [a.message_id for a in await adapter.poll_acknowledgements()] == [answered]


async def test_inbound_naming_another_organisation_with_its_own_unit_inside_is_refused(
    service: NhnMessageService, adapter: NhnMsh, pki: SimulatedPki
) -> None:
    """Review finding: the sender is the organisation; the signer's own HER-id and orgnr
    tucked in as its department do not make it the signer's."""
    adapter.remember({"base_url": service.base_url})
    directory = load_directory(DEFAULT_DIRECTORY)
    own = directory.orgnr_of_her_id(KE_HER)
    pki.replace(KE_HER, pki.authority.issue("KE", orgnr=own))
    victim = Organisation(name="KE Ålesund", her_id=99001508)
    forged = receipt_to_apprec(
        Receipt(
            generated_at=dt.datetime.now(dt.UTC),
            sender=victim,
            sender_department=Organisation(name="KE", her_id=KE_HER, orgnr=own),
            receiver=None,
            status=ReceiptStatus.OK,
            original_message_type="DIALOG_HELSEFAGLIG",
            original_message_id=str(uuid.uuid4()),
            original_issued_at=None,
        )
    )
    service.put_sealed(GATEWAY_HER, forged, sender_her_id=KE_HER)
    assert await refused_inbound(adapter, service) == ["S02"]


async def test_inbound_without_the_gateways_keys_is_left_unread_not_refused(
    service: NhnMessageService, db: Database, tmp_path: Path
) -> None:
    """The gateway's own configuration is at fault, not the sender: nothing is refused or
    lost; it is opened once the keys are there."""
    a = nhn_msh.create(context_for(db, tmp_path, nhn_signing_key=None))
    try:
        a.remember({"base_url": service.base_url})
        nhn_id = service.put_sealed(
            GATEWAY_HER, apprec_for(str(uuid.uuid4())), sender_her_id=KE_HER
        )
        assert await a.poll_acknowledgements() == []
        assert a.take_inbound() == []
        assert service.unread(GATEWAY_HER) == [nhn_id]
    finally:
        await a.aclose()
