"""The one XML parser of the project: hardened, bounded, and quiet about content.

Every XML document the gateway reads comes from outside (hospitals, kommune platforms,
Norsk Helsenett), so the parser trusts none of it:

- no DTD at all: a DOCTYPE in the prolog (behind any number of comments, in UTF-16 too) is
  refused before a byte is parsed, and one the scan could not read (UTF-7, ...) after, which
  closes external entities (XXE), parameter entities and entity-expansion bombs (billion
  laughs, quadratic blowup) at once — MsgHead, AppRec and Dialogmelding never need one;
- no network, ever (``no_network``), nothing loaded from a file (``load_dtd=False``), and
  XInclude is never processed (nothing here calls ``xinclude()``; an ``xi:include`` stays a
  plain element, which the schemas then refuse);
- bounded while it parses, not after: the document is fed in chunks to a pull parser that
  counts as it goes, so a bomb is stopped after at most one chunk past the limit instead of
  being built whole in memory first (a 4 MB document of ``<a/>`` is ~150 MB of tree):
  ``max_bytes`` (the caller's, checked before a byte is parsed), depth ``MAX_DEPTH``,
  ``MAX_ELEMENTS`` elements, ``MAX_ATTRIBUTES`` attributes; libxml2's own limits stay on
  beneath them (no ``huge_tree``: text nodes of 10 MB, names of 50 000 characters, depth 256);
- the encodings KITH messages use, only (UTF-8, UTF-16, ISO-8859-1 and its kin ISO-8859-15,
  windows-1252, US-ASCII): UTF-7, UTF-32 or EBCDIC are how filters are slipped past, never
  how a health record is sent; a byte order mark that contradicts the encoding declaration
  is refused, not guessed at;
- comments and processing instructions are dropped: they carry nothing a mapping reads, and
  every mapping may then walk children knowing each one is an element.

Every refusal is an :class:`XmlRefused`, a :class:`Refused` (so every caller's mapping to an
AppRec/4xx holds) with the 8221 code the sender sees (T01 not well-formed, T99 refused form)
and a ``reason`` naming the rule, for tests and operators. Error texts name limits, line and
column, never the document's text: they go into AppRecs, logs and operator views, and the
document may hold a person's data.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from lxml import etree

from gateway.domain.receipt import ReceiptError, Refused

#: Real documents nest about a dozen levels (MsgHead → Document → RefDoc → Content →
#: Dialogmelding/IndividuellPlan → …; the KITH samples reach 10); 64 leaves room for any
#: content a MsgHead may carry, and stays below libxml2's 256 so this limit answers first.
MAX_DEPTH: Final = 64
#: A need notice has ~100 elements, a plan with every § 19 item and dozens of participants,
#: measures and goals a few thousand; 50 000 is an order of magnitude above any plan and
#: keeps a refused document's tree to a few MB.
MAX_ELEMENTS: Final = 50_000
#: KITH elements carry a handful of attributes (V, DN, S, OT); twice the element limit.
MAX_ATTRIBUTES: Final = 100_000
#: the encodings taken (Python codec names, as ``codecs.lookup`` spells them): Unicode, and the
#: single-byte Western European sets older Norwegian systems write (ASCII-compatible, so the
#: byte checks here read them as they are)
ACCEPTED_ENCODINGS: Final = frozenset(
    {"utf-8", "utf-16", "utf-16-le", "utf-16-be", "iso8859-1", "iso8859-15", "cp1252", "ascii"}
)
_ACCEPTED_SHOWN = "UTF-8, UTF-16, ISO-8859-1, ISO-8859-15 or windows-1252"

#: how much is parsed between two looks at the counts: at most this much past a limit
_CHUNK = 64 * 1024
#: what an empty document may hold: whitespace and byte order marks
_BLANK = b" \t\r\n" + codecs.BOM_UTF8 + codecs.BOM_UTF16_LE + codecs.BOM_UTF16_BE
_SPACE = re.compile(r"[ \t\r\n]*")
#: byte order marks, longest first (a UTF-32 LE mark begins like a UTF-16 LE one)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED = re.compile(r"""^<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"']{0,40})["']""")
#: libxml2's own limits (names, text nodes, depth): the form is refused, not the syntax
_LIMIT_ERRORS = frozenset({etree.ErrorTypes.ERR_RESOURCE_LIMIT, etree.ErrorTypes.ERR_NAME_TOO_LONG})


class XmlRefused(Refused):
    """The parser refused a document: one receipt error, and the rule that refused it.

    A :class:`Refused`, so whoever maps refusals to AppRecs and HTTP answers maps this one
    too. ``reason`` is one of ``size``, ``dtd``, ``encoding``, ``depth``, ``elements``,
    ``attributes``, ``limit`` (libxml2's: a name or text node too long), ``syntax``, ``empty``.
    """

    def __init__(self, code: str, reason: str, detail: str) -> None:
        super().__init__(ReceiptError(code=code, detail=detail))
        self.reason = reason


def parse_xml(
    data: bytes,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    max_elements: int = MAX_ELEMENTS,
    max_attributes: int = MAX_ATTRIBUTES,
) -> etree._Element:
    """The root element of ``data``, or :class:`XmlRefused` (a :class:`Refused`)."""
    if len(data) > max_bytes:
        raise XmlRefused("T99", "size", f"XML document larger than {max_bytes} bytes")
    _check_byte_order_mark(data)
    if _prolog_declares_dtd(data):
        raise _dtd_refused()
    counter = _Counter(max_depth, max_elements, max_attributes)
    # a fresh parser per document: a feed parser keeps its state, and one that stopped
    # half-way must not be reused (creating one costs a few microseconds)
    parser = _new_parser()
    root: etree._Element | None = None
    failure: XmlRefused | None = None
    try:
        for start in range(0, len(data), _CHUNK):
            parser.feed(data[start : start + _CHUNK])
            counter.count(parser)
        root = parser.close()
    except etree.XMLSyntaxError as e:
        failure = _syntax_refused(e, data)
    if failure is not None:
        # the events before the error tell whether a limit of ours was passed first (a depth
        # bomb passes MAX_DEPTH and libxml2's 256 in the same chunk): that is the better answer
        counter.count(parser)
        raise failure
    if root is None:
        raise XmlRefused("T01", "empty", "empty XML document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # an encoding the prolog scan does not read (UTF-7, UTF-32 without a mark, ...) hid
        # the DOCTYPE; nothing in it was resolved or loaded, but the document is refused all
        # the same
        raise _dtd_refused()
    _check_encoding(docinfo.encoding)
    return root


def _new_parser() -> etree.XMLPullParser:
    return etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=True,
        remove_pis=True,
        # NOT collect_ids=False: with lxml 6.1 / libxml2 2.14 it makes the parser open the
        # external DTD a DOCTYPE names (file:///etc/passwd, a FIFO that blocks), load_dtd=False
        # or not; tests/unit/test_xmlsafe_limits.py holds that no file is read
    )


class _Counter:
    """Depth, elements and attributes seen so far; refuses as soon as one passes its limit."""

    def __init__(self, max_depth: int, max_elements: int, max_attributes: int) -> None:
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.max_attributes = max_attributes
        self.depth = 0
        self.elements = 0
        self.attributes = 0

    def count(self, parser: etree.XMLPullParser) -> None:
        for event, element in parser.read_events():
            if event == "end":
                self.depth -= 1
                continue
            self.depth += 1
            self.elements += 1
            self.attributes += len(element.attrib)
            if self.depth > self.max_depth:
                raise XmlRefused("T99", "depth", f"XML nested deeper than {self.max_depth} levels")
            if self.elements > self.max_elements:
                raise XmlRefused(
                    "T99", "elements", f"XML with more than {self.max_elements} elements"
                )
            if self.attributes > self.max_attributes:
                raise XmlRefused(
                    "T99", "attributes", f"XML with more than {self.max_attributes} attributes"
                )


def _dtd_refused() -> XmlRefused:
    return XmlRefused("T99", "dtd", "XML with a DTD (DOCTYPE, entities) is not accepted")


def _prolog_declares_dtd(data: bytes) -> bool:
    """Whether a DOCTYPE stands in the prolog (before the root element, the only place one
    may): found before a byte is parsed, however many comments come first, so the parser
    never reads one — libxml2 checks entity amplification even with resolve_entities off,
    and that answer would hide the better one. Linear: ``find``, no backtracking."""
    text = _prolog_text(data)
    at = 0
    while True:
        space = _SPACE.match(text, at)
        at = space.end() if space else at
        if text.startswith("<?", at):
            opening, close = "<?", "?>"
        elif text.startswith("<!--", at):
            opening, close = "<!--", "-->"
        else:
            return text[at : at + 9].upper() == "<!DOCTYPE"
        end = text.find(close, at + len(opening))
        if end < 0:
            return False  # not well-formed: the parser says where
        at = end + len(close)


def _prolog_text(data: bytes) -> str:
    """``data`` as text good enough to read markup in: UTF-16 (marked, or ``<`` in it) as
    UTF-16, anything else as Latin-1, which keeps every ASCII byte where it is."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(b"<\x00"):
        return data.decode("utf-16-le", "replace").removeprefix("\ufeff")
    if data.startswith(codecs.BOM_UTF16_BE) or data.startswith(b"\x00<"):
        return data.decode("utf-16-be", "replace").removeprefix("\ufeff")
    return data.removeprefix(codecs.BOM_UTF8).decode("latin-1")


def _syntax_refused(e: etree.XMLSyntaxError, data: bytes) -> XmlRefused:
    """T01 with where the parser stopped; never the message text, which may quote input."""
    line, column = e.position if e.lineno else (0, 0)
    where = f" (line {line}, column {column})" if line else ""
    if e.code in _LIMIT_ERRORS:
        return XmlRefused(
            "T99", "limit", f"XML exceeds a parser limit (name or text length){where}"
        )
    if e.code == etree.ErrorTypes.ERR_UNSUPPORTED_ENCODING:
        return XmlRefused("T99", "encoding", f"XML encoding is not accepted ({_ACCEPTED_SHOWN})")
    if e.code == etree.ErrorTypes.ERR_DOCUMENT_EMPTY and not data.strip(_BLANK):
        return XmlRefused("T01", "empty", "empty XML document")
    return XmlRefused("T01", "syntax", f"not well-formed XML{where}")


def _check_byte_order_mark(data: bytes) -> None:
    """A byte order mark and an encoding declaration that disagree: refused, not guessed.

    libxml2 follows the mark and ignores the declaration; the XML spec calls the mismatch a
    fatal error, and a sender whose two statements disagree may have written the names in the
    document (æ, ø, å) in either encoding.
    """
    marked = next(((bom, name) for bom, name in _BOMS if data.startswith(bom)), None)
    if marked is None:
        return
    bom, bom_encoding = marked
    if bom_encoding.startswith("utf-32"):
        raise _encoding_refused(bom_encoding)
    declared = _DECLARED.match(data[len(bom) : len(bom) + 256].decode(bom_encoding, "replace"))
    if declared is None:
        return
    try:
        name = codecs.lookup(declared.group(1)).name
    except LookupError:
        raise _encoding_refused(declared.group(1)) from None
    if name not in (bom_encoding, bom_encoding[:6].rstrip("-")):
        raise XmlRefused(
            "T01",
            "encoding",
            f"the byte order mark ({bom_encoding.upper()}) and the encoding declaration"
            f" ({_shown(declared.group(1))}) disagree",
        )


def _check_encoding(encoding: str | None) -> None:
    """The encoding libxml2 read the document in (declared, marked or UTF-8) must be taken."""
    try:
        name = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        raise _encoding_refused(encoding or "") from None
    if name not in ACCEPTED_ENCODINGS:
        raise _encoding_refused(encoding or "")


def _encoding_refused(encoding: str) -> XmlRefused:
    return XmlRefused(
        "T99",
        "encoding",
        f"XML encoding {_shown(encoding)} is not accepted ({_ACCEPTED_SHOWN})",
    )


def _shown(name: str) -> str:
    """An encoding name as it may be echoed: the sender wrote it, so only its safe letters."""
    return re.sub(r"[^A-Za-z0-9._-]", "?", name)[:40] or "(none)"


def text_of(element: etree._Element | None) -> str | None:
    """The element's text with surrounding whitespace dropped; None when absent or empty."""
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return text or None
