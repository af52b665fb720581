"""What the ingest fuzz tests send: valid documents, broken in every way a sender (or an
attacker) could break them.

XML: the three MsgHead types the gateway takes (notice, plan, consent statement), built by our
own mappings, plus the official KITH sample, then mutated on three levels — bytes (flip,
insert, delete, truncate, NUL), tree (remove, duplicate, swap or rename elements, other
namespaces, odd text and attribute values, deep nesting, floods, huge attributes, comments)
and document (DOCTYPE and entity attacks, other encodings and contradicting byte order marks).

JSON: the message Bundles (notice, plan) and a Consent, mutated structure-aware
(tests/strategies.py ``mutated``: wrong types, nulls, deletions, cross-wired strings), with
tokens JSON may hold but nobody expects (huge numbers, lone surrogates, deep nesting,
duplicate keys, NaN), or as junk: random JSON, random bytes, other encodings.

Nothing here reads the code under test to decide what to send.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import strategies as st
from lxml import etree

from gateway.demo.peers import consent_json
from gateway.demo.samples import ke_of, make_notice, make_transfer
from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.model import ConsentGiver, Organisation
from mappings.fhir.notice import notice_to_bundle
from mappings.fhir.plan import transfer_to_bundle
from mappings.plo.consent import consent_to_msghead
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.notice import notice_to_msghead
from mappings.plo.plan import transfer_to_msghead
from tests.standards import standards_dir

GATEWAY = Party(Organisation(name="ip-gateway", her_id=99999999))
HEALTH_TRUST = Organisation(name="Helse Møre og Romsdal HF", her_id=99100001, orgnr="983974899")
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)

XML_TYPES = ("application/xml", "text/xml")
JSON_TYPES = ("application/fhir+json", "application/json")
#: content types a confused (or hostile) client sends; most bodies get a type the endpoint reads
ODD_TYPES = (
    "",
    "text/plain",
    "application/octet-stream",
    "application/fhir+json; charset=utf-16",
    "APPLICATION/FHIR+JSON",
    "application/xml; charset=iso-8859-1",
    "application/json;;;",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "text/xml\x7f",
    "*/*",
)


# --------------------------------------------------------------------------- samples


class Samples(list[Any]):
    """Documents to start from; shown by count in hypothesis' reports, not byte by byte."""

    def __repr__(self) -> str:
        return f"<{len(self)} samples>"


def xml_samples(seed: int = 1) -> Samples:
    """A notice, a plan (with a health trust taking part) and a consent statement as MsgHead
    v1.2, as the gateway takes them, and the official Dialogmelding sample (a type it does
    not take)."""
    rng = random.Random(seed)
    notice = make_notice(rng, "1506")
    transfer = make_transfer(rng, "1506", "1508", health_trust=HEALTH_TRUST)
    record = ConsentRecord(
        id=f"fuzz-{seed}",
        purposes=(ConsentPurpose.NEED_NOTICE,),
        given_by=ConsentGiver.PERSON,
        given_on=dt.date(2026, 11, 1),
        recorded_at=NOW,
    )
    statement = consent_to_msghead(
        record,
        notice.patient,
        msg_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        sender=Party(ke_of("1506")),
        receiver=GATEWAY,
        generated_at=NOW,
    )
    kith = standards_dir() / "samples" / "msghead-dialogmelding-1.1-helsefaglig.xml"
    return Samples(
        [
            to_bytes(notice_to_msghead(notice, msg_id=str(uuid.uuid4()), receiver=GATEWAY)),
            to_bytes(transfer_to_msghead(transfer, msg_id=str(uuid.uuid4()), receiver=GATEWAY)),
            to_bytes(statement),
            kith.read_bytes(),
        ]
    )


def fhir_samples(seed: int = 1) -> Samples:
    """A notice and a plan transfer as FHIR message Bundles."""
    rng = random.Random(seed)
    return Samples(
        [
            notice_to_bundle(make_notice(rng, "1506")),
            transfer_to_bundle(make_transfer(rng, "1506", "1508", health_trust=HEALTH_TRUST)),
        ]
    )


def consent_sample(seed: int = 1) -> dict[str, Any]:
    return consent_json(make_notice(random.Random(seed), "1506").patient.person_id, "need-notice")


# --------------------------------------------------------------------------- odd values

#: XML-compatible strings no field expects (lxml refuses to write the others: those come in
#: through the byte mutations)
ODD_TEXT = (
    "",
    " ",
    "\t\n ",
    "0",
    "-1",
    "99999999999999999999999999999",
    "1e400",
    "NaN",
    "true",
    "2026-02-30",
    "2026-13-01T25:61:61",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00Z",
    "00000000000",
    "13116900216",
    "41010112345",
    "1506",
    "0000",
    "9999",
    "urn:oid:2.16.578.1.12.4.1.2:",
    "x" * 5000,
    "æøå ÆØÅ \u202e\u200b",
    "\U0001f600",
    "<script>&amp;</script>",
    "%s%n{0}${jndi:ldap://127.0.0.1:9/x}",
)
NAMESPACES = (
    "",
    "urn:fuzz",
    "http://www.kith.no/xmlstds/msghead/2006-05-24",
    "http://www.kith.no/xmlstds/dialog/2013-01-23",
    "http://www.kith.no/xmlstds/dialog/2006-10-11",
    "http://www.kith.no/xmlstds/apprec/2012-02-15",
    "http://www.w3.org/2001/XInclude",
    "http://www.w3.org/2001/XMLSchema-instance",
)
DOCTYPES = (
    b'<!DOCTYPE MsgHead [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE MsgHead SYSTEM "file:///etc/passwd">',
    b'<!DOCTYPE MsgHead SYSTEM "http://127.0.0.1:9/msghead.dtd">',
    b'<!DOCTYPE MsgHead [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    b'<!DOCTYPE MsgHead [<!ENTITY l0 "lol">'
    + b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
    + b"]>",
    b'<!DOCTYPE MsgHead [<!ENTITY a "' + b"x" * 10_000 + b'">]>',
    b"<!doctype MsgHead>",
)


# --------------------------------------------------------------------------- XML mutations

Draw = st.DrawFn
XmlMutation = Callable[[Draw, bytes], bytes]


def _position(draw: Draw, data: bytes) -> int:
    return draw(st.integers(0, max(len(data) - 1, 0)))


def flip_byte(draw: Draw, data: bytes) -> bytes:
    if not data:
        return data
    at = _position(draw, data)
    return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]


def insert_bytes(draw: Draw, data: bytes) -> bytes:
    at = _position(draw, data)
    extra = draw(
        st.sampled_from([b"\x00", b"<", b">", b"&", b"]]>", b"\xff\xfe", b"\xc3", b"\xed\xa0\x80"])
        | st.binary(min_size=1, max_size=8)
    )
    return data[:at] + extra + data[at:]


def delete_bytes(draw: Draw, data: bytes) -> bytes:
    at = _position(draw, data)
    return data[:at] + data[at + draw(st.integers(1, 16)) :]


def truncate(draw: Draw, data: bytes) -> bytes:
    return data[: _position(draw, data)]


def _tree(data: bytes) -> etree._Element | None:
    """Our own sample as a tree to edit (the test trusts it; a broken one is left alone)."""
    try:
        return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None


def _tree_edit(edit: Callable[[Draw, etree._Element], None]) -> XmlMutation:
    def mutation(draw: Draw, data: bytes) -> bytes:
        root = _tree(data)
        if root is None:
            return flip_byte(draw, data)
        edit(draw, root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    mutation.__name__ = edit.__name__
    return mutation


def _element(draw: Draw, root: etree._Element, *, below_root: bool = False) -> etree._Element:
    elements = [e for e in root.iter("*") if not below_root or e is not root]
    return draw(st.sampled_from(elements or [root]))


@_tree_edit
def remove_element(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root, below_root=True)
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


@_tree_edit
def duplicate_element(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root, below_root=True)
    for _ in range(draw(st.integers(1, 3))):
        element.addnext(copy.deepcopy(element))


@_tree_edit
def swap_names(draw: Draw, root: etree._Element) -> None:
    a, b = _element(draw, root), _element(draw, root)
    a.tag, b.tag = b.tag, a.tag


@_tree_edit
def move_element(draw: Draw, root: etree._Element) -> None:
    """An element where another one belongs (a Patient inside an Organisation, ...)."""
    element = _element(draw, root, below_root=True)
    target = _element(draw, root)
    if element not in target.iterancestors() and element is not target:
        target.append(element)


@_tree_edit
def change_namespace(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root)
    namespace = draw(st.sampled_from(NAMESPACES))
    local = etree.QName(element).localname
    element.tag = f"{{{namespace}}}{local}" if namespace else local


@_tree_edit
def odd_text(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root)
    element.text = draw(st.sampled_from(ODD_TEXT) | st.text(max_size=20).filter(_xml_ok))


@_tree_edit
def odd_attribute(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root)
    names = [*element.attrib, "V", "DN", "S", "OT", "{urn:fuzz}x"]
    name = draw(st.sampled_from(names))
    if draw(st.booleans()) and name in element.attrib:
        del element.attrib[name]
    else:
        element.set(name, draw(st.sampled_from(ODD_TEXT) | st.text(max_size=20).filter(_xml_ok)))


@_tree_edit
def deep_nesting(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root)
    inner = element
    for _ in range(draw(st.sampled_from([10, 40, 70, 300]))):
        inner = etree.SubElement(inner, element.tag)


@_tree_edit
def element_flood(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root)
    for _ in range(draw(st.sampled_from([100, 5_000, 50_001]))):
        etree.SubElement(element, "a")


@_tree_edit
def huge_attribute(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root)
    element.set(
        draw(st.sampled_from(["V", "DN", "huge"])), "Ø" * draw(st.sampled_from([1_000, 100_000]))
    )


@_tree_edit
def comments_and_pis(draw: Draw, root: etree._Element) -> None:
    element = _element(draw, root)
    node = draw(
        st.sampled_from(
            [etree.Comment("c"), etree.ProcessingInstruction("pi", "x"), etree.Comment("")]
        )
    )
    element.insert(draw(st.integers(0, len(element))), node)


def doctype(draw: Draw, data: bytes) -> bytes:
    """A DOCTYPE (entities, external DTD, bombs) after the declaration, maybe behind a long
    comment (past a byte check that reads only the start)."""
    body = data.partition(b"?>")[2] if data.startswith(b"<?xml") else data
    padding = draw(st.sampled_from([b"", b"<!--" + b"p" * 5000 + b"-->"]))
    entity_use = draw(st.sampled_from([b"", b"&x;", b"&l9;", b"&a;" * 50]))
    body = body.replace(b"</MsgHead>", entity_use + b"</MsgHead>", 1)
    return b'<?xml version="1.0"?>' + padding + draw(st.sampled_from(DOCTYPES)) + body


def reencode(draw: Draw, data: bytes) -> bytes:
    """Another encoding, declared truly or falsely, with or without a byte order mark."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    body = text.partition("?>")[2] if text.startswith("<?xml") else text
    declared = draw(st.sampled_from(["UTF-8", "UTF-16", "ISO-8859-1", "UTF-7", "UTF-32", None]))
    actual = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1"]))
    head = f'<?xml version="1.0" encoding="{declared}"?>' if declared else ""
    return (head + body).encode(actual, errors="replace")


def nul_byte(draw: Draw, data: bytes) -> bytes:
    at = _position(draw, data)
    return data[:at] + b"\x00" + data[at:]


def _xml_ok(text: str) -> bool:
    """What lxml will write into a document (the rest arrives through the byte mutations)."""
    try:
        etree.Element("t").text = text
    except ValueError:
        return False
    return True


XML_MUTATIONS: tuple[XmlMutation, ...] = (
    flip_byte,
    insert_bytes,
    delete_bytes,
    truncate,
    nul_byte,
    remove_element,
    duplicate_element,
    swap_names,
    move_element,
    change_namespace,
    odd_text,
    odd_text,
    odd_attribute,
    odd_attribute,
    deep_nesting,
    element_flood,
    huge_attribute,
    comments_and_pis,
    doctype,
    reencode,
)


@st.composite
def xml_documents(draw: Draw, samples: list[bytes]) -> bytes:
    """A sample with one to three mutations (tree edits first, so they still find a tree)."""
    data = draw(st.sampled_from(samples))
    mutations = draw(st.lists(st.sampled_from(XML_MUTATIONS), min_size=1, max_size=3))
    for mutation in mutations:
        data = mutation(draw, data)
    return data


# --------------------------------------------------------------------------- JSON

#: raw JSON tokens that stand where a value stands; some no JSON library writes
ODD_TOKENS = (
    b"1e400",
    b"-1e400",
    b"123456789012345678901234567890123456789",
    b"-0",
    b"0.0000000000000000000000000001",
    b"NaN",
    b"Infinity",
    b'"\\ud800"',
    b'"\\udc00x"',
    b'"\\u0000"',
    b'"\xed\xa0\x80"',
    b'"\xff"',
    b'"' + "ø".encode() * 50_000 + b'"',
    b"[" * 60 + b"]" * 60,
    b"[" * 5_000 + b"]" * 5_000,
    b'{"a":' * 60 + b"1" + b"}" * 60,
    b"{}",
    b"[]",
    b"null",
    b'{"resourceType":"Bundle","resourceType":"Patient"}',
    b'"' + b"\\\\" * 10 + b'"',
)


def _scalar_spans(raw: bytes) -> list[tuple[int, int]]:
    """Where the scalar values of a compact JSON text stand (after ``:`` or in an array),
    found without parsing: a value ends at the next ``,`` ``}`` or ``]`` outside a string."""
    spans = []
    i, n = 0, len(raw)
    while i < n:
        if raw[i] in b":[," and i + 1 < n and raw[i + 1] not in b"{[":
            start = i + 1
            j = start
            if j < n and raw[j] == ord('"'):
                j += 1
                while j < n and raw[j] != ord('"'):
                    j += 2 if raw[j] == ord("\\") else 1
                j += 1
            else:
                while j < n and raw[j] not in b",}]":
                    j += 1
            if j > start:
                spans.append((start, j))
            i = j
        else:
            i += 1
    return spans


@st.composite
def with_odd_token(draw: Draw, document: dict[str, Any]) -> bytes:
    """``document`` as JSON with one value replaced by a raw odd token (a key stays a key)."""
    raw = orjson.dumps(document)
    spans = _scalar_spans(raw)
    start, end = draw(st.sampled_from(spans))
    return raw[:start] + draw(st.sampled_from(ODD_TOKENS)) + raw[end:]


def json_bodies(documents: list[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """Mutated documents, odd tokens, other encodings, random JSON and random bytes."""
    from tests.strategies import json_values, mutated

    def encoded(draw: Draw) -> bytes:
        text = orjson.dumps(draw(st.sampled_from(documents))).decode()
        encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig"]))
        return text.encode(encoding, errors="replace")

    return st.one_of(
        st.sampled_from(documents).flatmap(lambda d: mutated(d, max_mutations=4)).map(orjson.dumps),
        st.sampled_from(documents).flatmap(with_odd_token),
        st.composite(encoded)(),
        json_values(max_leaves=10).map(orjson.dumps),
        st.binary(max_size=200),
        st.sampled_from([b"", b" ", b"\xef\xbb\xbf{}", b"{", b"[]", b"null", b"1e400"]),
    )
