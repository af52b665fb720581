"""A consent statement as MsgHead IP_SAMTYKKE <-> ConsentRecord and the person
(mappings/plo/consent.py): every record survives, and the MsgHead is valid against the KITH
schemas and our published ip-melding schema."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.consent import ConsentRecord
from gateway.domain.model import Organisation, Patient
from gateway.domain.receipt import Refused
from mappings.plo.consent import consent_to_msghead, msghead_to_consent
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.xmlsafe import parse_xml
from tests.strategies import patients
from tests.unit.test_fhir_consent import NOW, records
from tests.unit.test_plo_mapping import schema_set

SENDER = Party(Organisation(name="Koordinerende enhet, Molde kommune", her_id=99001506))
GATEWAY = Party(Organisation(name="ip-gateway", her_id=99999999))
LATER = NOW + dt.timedelta(days=3)


def written(record: ConsentRecord, patient: Patient) -> bytes:
    root = consent_to_msghead(
        record,
        patient,
        msg_id=str(uuid.uuid4()),
        sender=SENDER,
        receiver=GATEWAY,
        generated_at=NOW,
    )
    return to_bytes(root)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), patients())
def test_round_trip_and_schema(record: ConsentRecord, patient: Patient) -> None:
    root = parse_xml(written(record, patient), max_bytes=1_000_000)
    assert schema_set().errors(root) == []
    # read later than written: recorded_at is when the gateway learnt of it
    person, back, envelope = msghead_to_consent(root, allow_synthetic_ids=True, now=LATER)
    assert person == patient
    assert back == record.model_copy(update={"recorded_at": LATER})
    assert envelope.msg_type == "IP_SAMTYKKE"
    assert envelope.sender.organisation.her_id == 99001506


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), patients())
def test_a_withdrawal_without_its_time_is_dated_when_learnt(
    record: ConsentRecord, patient: Patient
) -> None:
    withdrawn = record.model_copy(update={"withdrawn_at": NOW, "refused": False})
    body = written(withdrawn, patient)
    start, end = body.index(b"<TrukketTilbake"), body.index(b"</TrukketTilbake>")
    body = body[:start] + body[end + len(b"</TrukketTilbake>") :]
    root = parse_xml(body, max_bytes=1_000_000)
    assert schema_set().errors(root) == []
    _, back, _ = msghead_to_consent(root, allow_synthetic_ids=True, now=LATER)
    assert back.withdrawn_at == LATER


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), patients(), st.sampled_from([b"given", b"refused"]))
def test_a_withdrawal_time_on_a_given_consent_is_refused(
    record: ConsentRecord, patient: Patient, status: bytes
) -> None:
    withdrawn = record.model_copy(update={"withdrawn_at": NOW, "refused": False})
    body = written(withdrawn, patient).replace(
        b"<Status>withdrawn</Status>", b"<Status>" + status + b"</Status>"
    )
    root = parse_xml(body, max_bytes=1_000_000)
    with pytest.raises(Refused) as info:
        msghead_to_consent(root, allow_synthetic_ids=True, now=LATER)
    assert [e.code for e in info.value.errors] == ["T02"]
    assert patient.person_id not in str(info.value)
