"""The hardened XML parser (mappings/plo/xmlsafe.py) against hostile and broken input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.receipt import Refused
from mappings.plo.xmlsafe import parse_xml
from tests.standards import standards_dir

MAX = 4 * 1024 * 1024

LOCAL_FILE_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE MsgHead [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">&xxe;</MsgHead>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]><a/>"""

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)

EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>'


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(LOCAL_FILE_XXE, id="xxe-local-file"),
        pytest.param(PARAMETER_ENTITY, id="parameter-entity-network"),
        pytest.param(BILLION_LAUGHS, id="entity-expansion-bomb"),
        pytest.param(EXTERNAL_DTD, id="external-dtd"),
        pytest.param(b"<!doctype a><a/>", id="lowercase-doctype"),
    ],
)
def test_any_dtd_is_refused_quickly(document: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(Refused) as info:
        parse_xml(document, max_bytes=MAX)
    assert time.perf_counter() - started < 1.0
    assert [e.code for e in info.value.errors] == ["T99"]


def test_doctype_hidden_by_utf16_is_refused_after_parsing_without_resolving() -> None:
    document = LOCAL_FILE_XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
    with pytest.raises(Refused) as info:
        parse_xml(document.encode("utf-16"), max_bytes=MAX)
    assert [e.code for e in info.value.errors] == ["T99"]
    hostname = Path("/etc/hostname")
    if hostname.is_file() and hostname.read_text().strip():
        assert hostname.read_text().strip() not in str(info.value)


def test_oversized_is_refused_before_parsing() -> None:
    document = b"<a>" + b"x" * (20 * 1024 * 1024) + b"</a>"
    started = time.perf_counter()
    with pytest.raises(Refused) as info:
        parse_xml(document, max_bytes=MAX)
    assert time.perf_counter() - started < 0.5
    assert [e.code for e in info.value.errors] == ["T99"]


def test_deep_nesting_is_refused() -> None:
    # well-formed, but past the depth limit (tests/unit/test_xmlsafe_limits.py): T99
    document = b"<a>" * 10_000 + b"</a>" * 10_000
    with pytest.raises(Refused) as info:
        parse_xml(document, max_bytes=MAX)
    assert [e.code for e in info.value.errors] == ["T99"]


def test_truncated_sample_is_t01_with_position_not_content() -> None:
    data = (standards_dir() / "samples" / "msghead-dialogmelding-1.1-helsefaglig.xml").read_bytes()
    with pytest.raises(Refused) as info:
        parse_xml(data[: len(data) // 2], max_bytes=MAX)
    (error,) = info.value.errors
    assert error.code == "T01"
    assert "line" in (error.detail or "")
    assert "13116900216" not in str(info.value)
    assert "Danser" not in str(info.value)


@pytest.mark.parametrize("document", [b"", b"   ", b"not xml", b"<a>", b"<a></b>", b"\xff\xfe<"])
def test_malformed_is_t01(document: bytes) -> None:
    with pytest.raises(Refused) as info:
        parse_xml(document, max_bytes=MAX)
    assert [e.code for e in info.value.errors] == ["T01"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_an_element_or_a_refusal(data: bytes) -> None:
    codes: set[str] = set()
    try:
        parse_xml(data, max_bytes=MAX)
    except Refused as r:
        codes = {e.code for e in r.errors}
    assert codes <= {"T01", "T99"}


# that no other XML parser is used: tests/unit/test_xml_parser_everywhere.py (ast, not grep)
