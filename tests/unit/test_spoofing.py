"""The spoofing rule (issue 8): the sender a message names, read the way the gateway reads it,
must be the caller's own organisation. Property tests over every notice FHIR and XML carry."""

from __future__ import annotations

import copy
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth import spoofing
from gateway.config import DEFAULT_DIRECTORY
from gateway.demo.peers import GATEWAY
from gateway.directory import load_directory
from gateway.domain.model import NeedNotice
from mappings.fhir.notice import notice_to_bundle
from mappings.plo.msghead import read_envelope, to_bytes
from mappings.plo.notice import notice_to_msghead
from mappings.plo.xmlsafe import parse_xml
from tests.strategies import need_notices

DIRECTORY = load_directory(DEFAULT_DIRECTORY)
ORGS = st.frozensets(st.sampled_from(["983974899", "883974832", "991506004", "974749025"]))


def named_in(notice: NeedNotice) -> set[tuple[str | None, str | None]]:
    """The identified units (a unit with no id names no one, whichever way it travels)."""
    units = [notice.sender.organisation, *filter(None, [notice.sender.department])]
    return {(str(u.her_id) if u.her_id else None, u.orgnr) for u in units} - {(None, None)}


@settings(max_examples=60, deadline=None)
@given(need_notices(synthetic=True))
def test_the_fhir_sender_is_read_as_the_notice_names_it(notice: NeedNotice) -> None:
    named = set(spoofing.fhir_sender(notice_to_bundle(notice))) - {(None, None)}
    assert named == named_in(notice)


@settings(max_examples=60, deadline=None)
@given(need_notices(synthetic=True))
def test_the_msghead_sender_is_read_as_the_notice_names_it(notice: NeedNotice) -> None:
    msg_id = str(uuid.uuid5(uuid.NAMESPACE_URL, notice.sender_message_id))  # MsgId is a GUID
    body = to_bytes(notice_to_msghead(notice, msg_id=msg_id, receiver=GATEWAY))
    envelope = read_envelope(parse_xml(body, max_bytes=len(body)), allow_synthetic_ids=True)
    assert set(spoofing.msghead_sender(envelope.sender)) - {(None, None)} == named_in(notice)


@given(ORGS, ORGS)
def test_a_caller_speaks_for_a_sender_only_when_it_holds_all_its_organisations(
    token: frozenset[str], sender: frozenset[str]
) -> None:
    assert spoofing.speaks_for(token, sender) == (bool(sender) and sender <= token)


def test_the_directory_places_a_her_id_without_an_orgnr() -> None:
    molde = DIRECTORY.entries["1506"].unit
    found = spoofing.sender_orgnrs([(str(molde.her_id), None)], DIRECTORY)
    assert found == {molde.orgnr}
    # unknown HER-ids and nothing at all place no one
    assert spoofing.sender_orgnrs([("91234567", None), (None, None)], DIRECTORY) == set()
    # a HER-id is read as the model reads it: another spelling of it names the same unit
    hmr = DIRECTORY.health_trusts[99100001].unit
    for spelling in ("+99100001", "0099100001", " 99100001 "):
        assert spoofing.sender_orgnrs([(spelling, None)], DIRECTORY) == {hmr.orgnr}
    # one the model would not take cannot be placed: not verifiable
    for junk in ("abc", "-5", "1e3", "99100001.5"):
        assert spoofing.sender_orgnrs([(junk, None)], DIRECTORY) is None
    assert not spoofing.speaks_for(frozenset({"983974899"}), None)
    # the transport check on the NHN path reads HER-ids the same way
    assert spoofing.sender_her_ids([("+99100001", None), (None, "983974899")]) == {99100001}
    assert spoofing.sender_her_ids([("abc", None)]) is None


def test_a_bundle_whose_sender_does_not_resolve_names_no_one() -> None:
    import random

    from gateway.demo.samples import make_notice

    bundle = notice_to_bundle(make_notice(random.Random(5), "1506"))
    broken = copy.deepcopy(bundle)
    broken["entry"][0]["resource"]["sender"] = {"reference": "Organization/nowhere"}
    assert spoofing.fhir_sender(broken) == []
    for junk in ({}, {"entry": "x"}, {"entry": [1, None]}, {"entry": [{"resource": []}]}):
        assert spoofing.fhir_sender(junk) == []
    # a partOf loop is followed no further than trust level
    looped = copy.deepcopy(bundle)
    unit = next(
        e
        for e in looped["entry"]
        if e["fullUrl"] == looped["entry"][0]["resource"]["sender"]["reference"]
    )
    unit["resource"]["partOf"] = {"reference": unit["fullUrl"]}
    assert len(spoofing.fhir_sender(looped)) == 2
