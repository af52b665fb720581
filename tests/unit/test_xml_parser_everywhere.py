"""Every XML document the product reads goes through the hardened parser (mappings/plo/xmlsafe).

Read with ``ast``, not grep: an alias (``from lxml import etree as ET``, ``from lxml.etree import
fromstring as f``, ``import lxml.etree``), a parser function handed on as a value, or a
``getattr(etree, "parse")`` is found as surely as ``etree.fromstring(...)``, and a comment or
a string that names a parser is not a finding. What may parse outside xmlsafe is allowlisted
per file, function and name, with the reason — and an entry that is no longer used fails too,
so the list cannot quietly grow stale.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the product: what runs in the gateway (tests parse our own answers, and trust them)
PACKAGES = ("gateway", "mappings", "adapters", "schemas")

#: modules that are XML parsers (or wrap one); importing one at all is a finding
PARSER_MODULES = (
    "xml",  # xml.etree, xml.dom(.minidom, .pulldom), xml.sax, xml.parsers.expat
    "pyexpat",
    "_elementtree",
    "defusedxml",
    "lxml.objectify",
    "lxml.html",
    "lxml.sax",
    "lxml.isoschematron",
    "fhir_core.xml_utils",  # FHIR XML: lxml's default parser
    "xmltodict",
    "xmlschema",
    "bs4",
    "html5lib",
    "untangle",
)
#: lxml.etree members that parse, or read documents, schemas or stylesheets from bytes/files
LXML_PARSERS = frozenset(
    {
        "fromstring",
        "fromstringlist",
        "XML",
        "XMLID",
        "XMLDTDID",
        "HTML",
        "parse",
        "iterparse",
        "XMLParser",
        "XMLPullParser",
        "HTMLParser",
        "HTMLPullParser",
        "ETCompatXMLParser",
        "set_default_parser",
        "DTD",
        "XInclude",
        "XSLT",
        "XMLSchema",
        "RelaxNG",
        "Schematron",
    }
)
#: methods that parse or expand, whatever object they are called on
PARSING_METHODS = frozenset({"xinclude", "model_validate_xml", "xml_loads"})

#: (file, enclosing function, qualified name) -> why it may parse outside xmlsafe
ALLOWED: dict[tuple[str, str, str], str] = {
    ("mappings/plo/xmlsafe.py", "_new_parser", "lxml.etree.XMLPullParser"): (
        "the hardened parser itself"
    ),
    ("mappings/plo/xsd.py", "load_schema_set", "lxml.etree.XMLParser"): (
        "parses the schema set's wrapper, a constant the module writes, with no network and a"
        " resolver that maps every import to our packaged XSD files; never input"
    ),
    ("mappings/plo/xsd.py", "load_schema_set", "lxml.etree.fromstring"): (
        "the same wrapper XSD (ours)"
    ),
    ("mappings/plo/xsd.py", "load_schema_set", "lxml.etree.XMLSchema"): (
        "compiles that wrapper and the XSD files it imports (ours and the official KITH ones)"
    ),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    function: str
    name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name} (in {self.function})"


def _is_parser_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in PARSER_MODULES)


def _parser_name(qualified: str) -> bool:
    """``lxml.etree.fromstring`` and the like (also reached as ``lxml.etree.XMLParser``)."""
    module, _, member = qualified.rpartition(".")
    return (module == "lxml.etree" and member in LXML_PARSERS) or _is_parser_module(qualified)


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.aliases: dict[str, str] = {}
        self.scope: list[str] = []
        self.findings: list[Finding] = []

    def found(self, node: ast.AST, name: str) -> None:
        function = ".".join(self.scope) or "<module>"
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), function, name))

    # scopes: the allowlist names the function a parse stands in
    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        if not isinstance(node, ast.ClassDef):
            self.visit(node.args)  # defaults run in the outer scope
        self.scope.append(node.name)
        for statement in node.body:
            self.visit(statement)
        self.scope.pop()

    visit_FunctionDef = _scoped
    visit_AsyncFunctionDef = _scoped
    visit_ClassDef = _scoped

    # annotations name types, they parse nothing (``schema: etree.XMLSchema``)
    def visit_arg(self, node: ast.arg) -> None:
        return None

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _is_parser_module(alias.name):
                self.found(node, alias.name)
            # ``import lxml.etree`` binds ``lxml``; ``import lxml.etree as x`` binds the module
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            qualified = f"{module}.{alias.name}"
            if _is_parser_module(module) or _parser_name(qualified):
                self.found(node, qualified)
            self.aliases[alias.asname or alias.name] = qualified

    def qualified(self, node: ast.expr) -> str | None:
        """``ET.fromstring`` -> ``lxml.etree.fromstring``, through the file's imports."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.qualified(node)
        if name and _parser_name(name):
            self.found(node, name)
        elif node.attr in PARSING_METHODS:
            self.found(node, f"*.{node.attr}")
        else:
            self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = self.aliases.get(node.id)
        if name and _parser_name(name):
            self.found(node, name)

    def visit_Call(self, node: ast.Call) -> None:
        func = self.qualified(node.func) or (
            node.func.id if isinstance(node.func, ast.Name) else ""
        )
        literal = (
            node.args[1].value
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
            else None
        )
        first = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        # getattr(etree, "fromstring")
        if func == "getattr" and isinstance(literal, str) and node.args:
            base = self.qualified(node.args[0])
            if base and _parser_name(f"{base}.{literal}"):
                self.found(node, f"{base}.{literal}")
            if literal in PARSING_METHODS:
                self.found(node, f"*.{literal}")
        # importlib.import_module("xml.dom.minidom"), __import__("pyexpat")
        importing = func in ("importlib.import_module", "__import__")
        if importing and isinstance(first, str) and _is_parser_module(first):
            self.found(node, first)
        # etree.ElementTree(file=...) parses the file with the default parser
        if func == "lxml.etree.ElementTree" and any(k.arg == "file" for k in node.keywords):
            self.found(node, "lxml.etree.ElementTree(file=...)")
        self.generic_visit(node)


def scan(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Finding]:
    """Every use of an XML parser in the ``packages`` under ``root``, allowlisted or not."""
    findings: list[Finding] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            scanner = _Scanner(relative)
            scanner.visit(ast.parse(path.read_bytes(), filename=relative))
            findings += scanner.findings
    return findings


def test_no_xml_parser_but_the_hardened_one_in_the_product() -> None:
    findings = scan(ROOT)
    offenders = [str(f) for f in findings if (f.path, f.function, f.name) not in ALLOWED]
    assert offenders == [], (
        "parse untrusted XML with mappings.plo.xmlsafe.parse_xml; a parser of our own files"
        " goes into ALLOWED with its reason"
    )
    used = {(f.path, f.function, f.name) for f in findings}
    assert sorted(set(ALLOWED) - used) == [], "allowlist entries no longer needed: remove them"


def test_the_product_parses_through_xmlsafe() -> None:
    """The scan finds what it should: the two allowlisted places are seen, so a scan that
    silently read nothing (wrong root, no files) cannot pass."""
    assert {f.path for f in scan(ROOT)} >= {"mappings/plo/xmlsafe.py", "mappings/plo/xsd.py"}


PLANTED = {
    "alias": "from lxml import etree as ET\nET.fromstring(b'<a/>')\n",
    "module-import": "import lxml.etree\nlxml.etree.XML(b'<a/>')\n",
    "module-import-as": "import lxml.etree as LE\nroot = LE.parse('f.xml')\n",
    "from-import-renamed": "from lxml.etree import fromstring as f\nf(b'<a/>')\n",
    "handed-on": "from lxml import etree\nreaders = [etree.fromstring]\n",
    "getattr": "from lxml import etree\ngetattr(etree, 'iterparse')('f.xml')\n",
    "stdlib-elementtree": "from xml.etree import ElementTree\nElementTree.fromstring('<a/>')\n",
    "stdlib-cElementTree-alias": "import xml.etree.ElementTree as ET\nET.XML('<a/>')\n",
    "minidom": "import xml.dom.minidom\n",
    "sax": "from xml import sax\n",
    "expat": "import pyexpat\n",
    "defusedxml": "import defusedxml.ElementTree\n",
    "objectify": "from lxml import objectify\n",
    "import-module": "import importlib\nimportlib.import_module('xml.dom.minidom')\n",
    "dunder-import": "__import__('xml.sax')\n",
    "xinclude": "def f(tree):\n    tree.xinclude()\n",
    "fhir-xml": "def f(model, data):\n    return model.model_validate_xml(data)\n",
    "elementtree-file": "from lxml import etree\netree.ElementTree(file='f.xml')\n",
    "custom-parser": "from lxml import etree\np = etree.XMLParser(resolve_entities=True)\n",
    "pull-parser-in-method": (
        "from lxml import etree\nclass A:\n    def f(self):\n        return etree.XMLPullParser()\n"
    ),
    "xslt": "from lxml import etree\netree.XSLT(etree.Element('a'))\n",
    # the allowlisted name in its allowlisted file, but in another function: still a finding
    "xsd-elsewhere": "from lxml import etree\ndef other():\n    etree.fromstring(b'<a/>')\n",
}


@pytest.mark.parametrize("source", PLANTED.values(), ids=PLANTED.keys())
def test_a_planted_parser_is_found(tmp_path: Path, source: str) -> None:
    (tmp_path / "mappings" / "plo").mkdir(parents=True)
    (tmp_path / "mappings" / "plo" / "xsd.py").write_text(textwrap.dedent(source))
    findings = scan(tmp_path, ("mappings",))
    offenders = [f for f in findings if (f.path, f.function, f.name) not in ALLOWED]
    assert offenders, f"not found: {source!r}"
    assert all(f.path == "mappings/plo/xsd.py" and f.line >= 1 for f in offenders)


def test_what_only_builds_or_reads_trees_is_no_finding(tmp_path: Path) -> None:
    source = """
        from lxml import etree
        from lxml.builder import ElementMaker
        from mappings.plo.xmlsafe import parse_xml

        class SchemaSet:
            schema: etree.XMLSchema

        def f(data: bytes, root: etree._Element) -> etree._Element:
            # etree.fromstring(data) in a comment is no call
            text = "etree.fromstring in a string is none either"
            tree = etree.ElementTree(root)
            etree.SubElement(root, "b").text = text
            etree.tostring(tree)
            root.xpath("//a")
            return parse_xml(data, max_bytes=10)
    """
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "ok.py").write_text(textwrap.dedent(source))
    assert scan(tmp_path, ("gateway",)) == []
