"""The one XML parser of the project: hardened, bounded, and quiet about content.

Every XML document the gateway reads comes from outside (hospitals, kommune platforms,
Norsk Helsenett), so the parser trusts none of it:

- no DTD at all: a document that declares one is refused before and after parsing, which
  closes external entities (XXE), parameter entities and entity-expansion bombs at once —
  MsgHead, AppRec and Dialogmelding never need one;
- no network, ever (``no_network``), and nothing loaded from a file (``load_dtd=False``);
- libxml2's default limits stay on (no ``huge_tree``): depth 256, text nodes of 10 MB;
- the caller's byte limit is checked before a byte is parsed.

Error texts name line and column, never the document's text: they go into AppRecs, logs
and operator views, and the document may hold a person's data.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from gateway.domain.receipt import Refused

#: a DOCTYPE can only stand in the prolog; 4 KiB covers any real declaration + comments
_PROLOG_BYTES = 4096
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_local = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread: lxml parser objects keep state while they parse."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse_xml(data: bytes, *, max_bytes: int) -> etree._Element:
    """The root element of ``data``, or Refused (T01 not well-formed, T99 refused form)."""
    if len(data) > max_bytes:
        raise Refused.one("T99", f"XML document larger than {max_bytes} bytes")
    if _DOCTYPE.search(data[:_PROLOG_BYTES]):
        raise Refused.one("T99", "XML with a DTD (DOCTYPE, entities) is not accepted")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as e:
        where = f" (line {e.lineno}, column {e.position[1]})" if e.lineno else ""
        raise Refused.one("T01", f"not well-formed XML{where}") from None
    except ValueError:
        # lxml refuses some inputs before parsing (e.g. a str with an encoding declaration)
        raise Refused.one("T01", "not a readable XML document") from None
    if root is None:
        raise Refused.one("T01", "empty XML document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # another encoding (UTF-16, ...) hid the DOCTYPE from the byte check; nothing in it
        # was resolved (resolve_entities=False), but the document is refused all the same
        raise Refused.one("T99", "XML with a DTD (DOCTYPE, entities) is not accepted")
    return root


def text_of(element: etree._Element | None) -> str | None:
    """The element's text with surrounding whitespace dropped; None when absent or empty."""
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return text or None
