"""The XML Schema set every KITH document is validated against, built from local files only.

MsgHead's ``Content`` is a strict wildcard, so the schema that validates a MsgHead must also
know the schema of what it carries. One set therefore holds MsgHead v1.2, Dialogmelding 1.0 and
1.1, kith-base64, AppRec 1.0 and 1.1 and the project's own IP content. The official schemas
import each other by URL (``http://www.kith.no/xmlstds/kith.xsd``,
``../../felleskomponenter/kith.xsd``, the W3C xmldsig schema): a resolver maps every import, by
file name, to the local copies, and the parser has no network — a missing file fails the build
of the set rather than reaching out.

Building the set reads files, so it happens once, at start; validating is then pure.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.domain.receipt import ReceiptError
from mappings.plo import namespaces as ns

#: the official schemas the set needs (file names as published; see shared/standards/README)
OFFICIAL_FILES = (
    "MsgHead-v1_2.xsd",
    "dialogmelding.xsd",
    "dialogmelding-v1.1.xsd",
    "kith-base64.xsd",
    "AppRec-v1-2004-11-21.xsd",
    "AppRec-v1.1.xsd",
    "kith.xsd",
    "felleskomponent1.xsd",
    "xmldsig-core-schema.xsd",
)
#: the project's own schemas, shipped in the ``schemas`` package
OWN_FILES = ("ip-melding-v1.xsd",)

_IMPORTS = (
    (ns.MSGHEAD, "MsgHead-v1_2.xsd"),
    (ns.DIALOG_1_0, "dialogmelding.xsd"),
    (ns.DIALOG_1_1, "dialogmelding-v1.1.xsd"),
    (ns.BASE64, "kith-base64.xsd"),
    (ns.APPREC_1_0, "AppRec-v1-2004-11-21.xsd"),
    (ns.APPREC_1_1, "AppRec-v1.1.xsd"),
    (ns.IP, "ip-melding-v1.xsd"),
)
#: at most this many schema errors go into one answer
MAX_ERRORS = 10


class SchemaSetError(RuntimeError):
    """The schema set cannot be built (a file is missing or broken): the gateway won't start."""


class _LocalFiles(etree.Resolver):
    def __init__(self, files: dict[str, Path]) -> None:
        super().__init__()
        self.files = files

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        name = (system_url or "").replace("\\", "/").rsplit("/", 1)[-1]
        path = self.files.get(name)
        if path is None:
            raise SchemaSetError(f"schema import {name!r} has no local file")
        return self.resolve_filename(str(path), context)


@dataclass(frozen=True)
class SchemaSet:
    """Validates any document of the set; answers with receipt errors (code T02)."""

    schema: etree.XMLSchema

    def errors(self, root: etree._Element) -> list[ReceiptError]:
        """[] when ``root`` is valid; else up to MAX_ERRORS T02 errors without any values."""
        if self.schema.validate(root):
            return []
        tree = root.getroottree()
        return [
            ReceiptError(code="T02", detail=_describe(entry, tree))
            for entry in list(self.schema.error_log)[:MAX_ERRORS]
        ]


def own_schema_dir() -> Path:
    return Path(str(importlib.resources.files("schemas")))


def load_schema_set(official_dir: Path, own_dir: Path | None = None) -> SchemaSet:
    own_dir = own_dir or own_schema_dir()
    files = {name: official_dir / name for name in OFFICIAL_FILES}
    files |= {name: own_dir / name for name in OWN_FILES}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise SchemaSetError(f"schema files missing: {', '.join(missing)}")
    wrapper = _wrapper(_IMPORTS)
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalFiles(files))
    try:
        doc = etree.fromstring(wrapper, parser, base_url=str(official_dir / "ipgw-set.xsd"))
        return SchemaSet(etree.XMLSchema(doc))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as e:
        raise SchemaSetError(f"schema set does not build: {e}") from e


def _wrapper(imports: Iterable[tuple[str, str]]) -> bytes:
    lines = [
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"'
        ' targetNamespace="urn:ipgw:schema-set" elementFormDefault="qualified">'
    ]
    lines += [f'<xs:import namespace="{n}" schemaLocation="{f}"/>' for n, f in imports]
    lines.append("</xs:schema>")
    return "\n".join(lines).encode()


# libxml2 quotes the offending value in several messages; the value may be a person's data
_VALUE_PATTERNS = (
    (re.compile(r"[Tt]he value '[^']*'"), "the value"),
    (re.compile(r"'[^']*' is not a valid value"), "the value is not a valid value"),
    (re.compile(r"'[^']*' is not accepted"), "the value is not accepted"),
    (re.compile(r"\[facet '([^']*)'\] The value has a length of '\d+'"), r"[facet '\1']"),
)
_NAMESPACE = re.compile(r"\{[^}]*\}")


def _describe(entry: Any, tree: etree._ElementTree) -> str:
    """One schema error as ``path: message``, with values and namespace URIs left out."""
    message = str(entry.message)
    for pattern, replacement in _VALUE_PATTERNS:
        message = pattern.sub(replacement, message)
    message = _NAMESPACE.sub("", message)
    path = _readable_path(tree, str(entry.path or ""))
    return f"{path}: {message}" if path else message


def _readable_path(tree: etree._ElementTree, xpath: str) -> str:
    """``/*/*[1]/*[4]`` (libxml2's path for default-namespace documents) -> MsgHead/MsgInfo/..."""
    try:
        found = tree.xpath(xpath) if xpath else []
    except etree.XPathError:
        return ""
    if not isinstance(found, list) or not found or not isinstance(found[0], etree._Element):
        return ""
    names = [etree.QName(e).localname for e in (found[0], *found[0].iterancestors())]
    return "/".join(reversed(names))
