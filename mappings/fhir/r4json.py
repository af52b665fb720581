"""Is this JSON the R4 JSON representation? The checks fhir.resources does not make.

fhir.resources' pydantic models coerce where R4 JSON is strict: the string ``"false"`` becomes a
boolean true-or-false, a number becomes a dateTime or a string, ``null`` passes for an absent
element, and a boolean where a url belongs ends in an AttributeError. A sender that writes such
JSON is not speaking R4, and reading it would silently change what the sender meant. The rules
checked here are the ones of the R4 JSON format (https://hl7.org/fhir/R4/json.html):

- a primitive is a JSON boolean (boolean), a JSON number (integer, unsignedInt, positiveInt,
  decimal) or a JSON string (everything else);
- ``null`` never stands for a value; in an array of primitives it only keeps the position
  of an item that has just an id or extensions in the parallel ``_name`` array;
- arrays are never empty; an element that repeats is always an array, one that does not is
  never one;
- only the elements the type defines (and ``_name`` for its primitives) may appear;
- an element is never an empty object (invariant ele-1, which the JSON Schema cannot state);
- a code with a required binding (``status``, ``intent``, ``use``, ...) is one of its codes.

The element table is read from the fhir.resources models themselves (once per type), so there
is one source of truth for what R4 defines. Cardinality, required elements and value patterns
are left to the models, which check them after this.
"""

from __future__ import annotations

import contextlib
import functools
import re
import types
import typing
from dataclasses import dataclass, replace
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.fhirprimitiveextension import FHIRPrimitiveExtension
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel

Kind = Literal["boolean", "integer", "decimal", "string", "object", "resource"]

#: how many problems one answer lists; the first few are what a sender needs to fix its code
MAX_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class _Element:
    kind: Kind
    many: bool
    #: the model of an ``object`` element (a complex datatype or backbone element)
    model: type[BaseModel] | None = None
    #: the R4 primitive type (``dateTime``, ``uri``, ...) whose rule a primitive value follows
    primitive: str | None = None
    #: the codes of a required binding (``status``, ``intent``, ...), which the models carry
    #: as metadata but do not check
    codes: frozenset[str] | None = None


class _Found(Exception):
    """Enough problems collected: stop walking."""


def r4_json_problems(resource: Any) -> list[str]:
    """Where ``resource`` departs from R4 JSON, as ``path: rule`` texts without any values.

    An empty list means the shape is R4 JSON; the content still has to pass the models.
    """
    problems: list[str] = []
    with contextlib.suppress(_Found):
        _check_resource(resource, "", problems)
    return problems


def _add(problems: list[str], path: str, rule: str) -> None:
    problems.append(f"{path or '(root)'}: {rule}")
    if len(problems) >= MAX_PROBLEMS:
        raise _Found


def _check_resource(value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        _add(problems, path, "a resource must be a JSON object")
        return
    resource_type = value.get("resourceType")
    model = _resource_model(resource_type) if isinstance(resource_type, str) else None
    if model is None:
        _add(problems, _join(path, "resourceType"), "not an R4 resource type")
        return
    _check_object(value, model, path, problems, is_resource=True)


#: resources R4B added; fhir.resources knows them, R4 (4.0.1) does not
_R4B_ONLY = frozenset(
    {
        "AdministrableProductDefinition",
        "Citation",
        "ClinicalUseDefinition",
        "EvidenceReport",
        "Ingredient",
        "ManufacturedItemDefinition",
        "NutritionProduct",
        "PackagedProductDefinition",
        "RegulatedAuthorization",
        "SubscriptionStatus",
        "SubscriptionTopic",
    }
)
#: abstract bases: never the resourceType of a resource in JSON
_ABSTRACT = frozenset({"Resource", "DomainResource"})


@functools.cache
def _resource_model(resource_type: str) -> type[BaseModel] | None:
    if resource_type in _R4B_ONLY or resource_type in _ABSTRACT:
        return None
    try:
        model: type[BaseModel] = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None
    # get_fhir_model_class also knows the datatypes ("HumanName"): only resources count
    return model if issubclass(model, Resource) else None


def _check_object(
    obj: dict[str, Any],
    model: type[BaseModel],
    path: str,
    problems: list[str],
    *,
    is_resource: bool,
) -> None:
    shape = _shape(model)
    if not obj and not is_resource:
        _add(problems, path, "an element needs a value or children (ele-1)")
        return
    for key, value in obj.items():
        where = _join(path, key)
        if is_resource and key == "resourceType":
            continue
        if key.startswith("_"):
            _check_primitive_extension(obj, key, value, shape, where, problems)
            continue
        element = shape.get(key)
        if element is None:
            _add(problems, where, "not an element of this type")
        elif value is None:
            _add(problems, where, "null is not allowed (leave the element out)")
        elif element.many:
            _check_array(obj, key, value, element, where, problems)
        else:
            if isinstance(value, list):
                _add(problems, where, "does not repeat: must not be an array")
            else:
                _check_value(value, element, where, problems)


def _check_array(
    obj: dict[str, Any],
    key: str,
    value: Any,
    element: _Element,
    where: str,
    problems: list[str],
) -> None:
    if not isinstance(value, list):
        _add(problems, where, "repeats: must be an array")
        return
    if not value:
        _add(problems, where, "an empty array is not allowed (leave the element out)")
        return
    companion = obj.get(f"_{key}")
    for index, item in enumerate(value):
        item_where = f"{where}[{index}]"
        if item is None:
            has_extension = (
                element.kind not in ("object", "resource")
                and isinstance(companion, list)
                and index < len(companion)
                and companion[index] is not None
            )
            if not has_extension:
                _add(problems, item_where, "null is only allowed beside an extension in _" + key)
        else:
            _check_value(item, element, item_where, problems)


def _check_primitive_extension(
    obj: dict[str, Any],
    key: str,
    value: Any,
    shape: dict[str, _Element],
    where: str,
    problems: list[str],
) -> None:
    base = shape.get(key[1:])
    if base is None or base.kind in ("object", "resource"):
        _add(problems, where, "not an element of this type")
        return
    if not base.many:
        if not isinstance(value, dict):
            _add(problems, where, "must be an object (id and extension)")
        else:
            _check_object(value, FHIRPrimitiveExtension, where, problems, is_resource=False)
        return
    values = obj.get(key[1:])
    if not isinstance(value, list) or not value:
        _add(problems, where, "must be a non-empty array beside its primitive array")
        return
    if values is not None and (not isinstance(values, list) or len(values) != len(value)):
        _add(problems, where, "must have as many items as the primitive array")
        return
    for index, item in enumerate(value):
        item_where = f"{where}[{index}]"
        if item is None:
            if values is None or values[index] is None:
                _add(problems, item_where, "a value or an extension is needed at each position")
        elif not isinstance(item, dict):
            _add(problems, item_where, "must be an object (id and extension)")
        else:
            _check_object(item, FHIRPrimitiveExtension, item_where, problems, is_resource=False)


def _check_value(value: Any, element: _Element, where: str, problems: list[str]) -> None:
    kind = element.kind
    if kind == "object":
        if not isinstance(value, dict):
            _add(problems, where, "must be a JSON object")
        else:
            assert element.model is not None
            _check_object(value, element.model, where, problems, is_resource=False)
    elif kind == "resource":
        _check_resource(value, where, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            _add(problems, where, "must be a JSON boolean (true or false)")
    elif kind == "integer":
        low, high = _INTEGER_RANGES[element.primitive or "integer"]
        if isinstance(value, bool) or not isinstance(value, int):
            _add(problems, where, "must be a JSON number without a fraction")
        elif not low <= value <= high:
            _add(problems, where, f"{element.primitive} must be within {low}..{high}")
    elif kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float):
            _add(problems, where, "must be a JSON number")
    elif not isinstance(value, str):
        _add(problems, where, "must be a JSON string")
    elif element.codes is not None and value not in element.codes:
        _add(problems, where, "not a code of its required value set")
    else:
        pattern = _PATTERNS.get(element.primitive or "")
        if pattern is not None and not pattern.fullmatch(value):
            _add(problems, where, f"not a valid R4 {element.primitive}")


#: how an element name looks (R4 names are ASCII letters and digits; ``_`` for a primitive's
#: extensions); a key that does not is the sender's free text and is not repeated
_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9_]{0,63}")


def _join(path: str, key: str) -> str:
    """The path to ``key``; an unknown key is named only if it looks like an element name: a
    path goes into receipts, logs and operator views, a key may hold anything (a name, a
    control character, 100 kB)."""
    shown = key if _NAME.fullmatch(key) else "(a key that is no element name)"
    return f"{path}.{shown}" if path else shown


# --------------------------------------------------------------------------- element tables


_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_OFFSET = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_MONTH, _DAY = r"(0[1-9]|1[0-2])", r"(0[1-9]|[1-2][0-9]|3[0-1])"
#: the regular expressions of https://hl7.org/fhir/R4/datatypes.html, matched whole; the
#: models check some of these and let others pass (a uri with spaces, a date of one digit)
_PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "string": r"[ \r\n\t\S]+",
        "markdown": r"[ \r\n\t\S]+",
        "code": r"[^\s]+( [^\s]+)*",
        "id": r"[A-Za-z0-9\-.]{1,64}",
        "uri": r"\S*",
        "url": r"\S*",
        "canonical": r"\S*",
        "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
        "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "date": rf"{_YEAR}(-{_MONTH}(-{_DAY})?)?",
        "dateTime": rf"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_OFFSET})?)?)?",
        "instant": rf"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_OFFSET}",
        "time": _TIME,
        "base64Binary": r"[A-Za-z0-9+/=\s]*",
    }.items()
}
_INTEGER_RANGES = {
    "integer": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**31 - 1),
    "positiveInt": (1, 2**31 - 1),
}
#: fhir_core's marker class (the Annotated metadata) -> the R4 primitive it stands for
_PRIMITIVES = {
    "Base64Binary": "base64Binary",
    "Canonical": "canonical",
    "Code": "code",
    "Date": "date",
    "DateTime": "dateTime",
    "Decimal": "decimal",
    "Id": "id",
    "Instant": "instant",
    "Integer": "integer",
    "Markdown": "markdown",
    "Oid": "oid",
    "PositiveInt": "positiveInt",
    "String": "string",
    "Time": "time",
    "UnsignedInt": "unsignedInt",
    "Uri": "uri",
    "Url": "url",
    "UuidVersion": "uuid",
    "Xhtml": "xhtml",
}
_KIND_OF_PRIMITIVE: dict[str, Kind] = {
    "boolean": "boolean",
    "integer": "integer",
    "unsignedInt": "integer",
    "positiveInt": "integer",
    "decimal": "decimal",
}


@functools.cache
def _shape(model: type[BaseModel]) -> dict[str, _Element]:
    """JSON name -> element, for the elements ``model`` defines (not the ``_name`` parts)."""
    shape: dict[str, _Element] = {}
    for name, field in model.model_fields.items():
        json_name = field.alias or name
        if json_name.startswith("_") or name == "fhir_comments" or json_name == "resourceType":
            continue
        element = _element(field.annotation)
        extra = field.json_schema_extra
        codes = extra.get("enum_values") if isinstance(extra, dict) else None
        if isinstance(codes, list) and codes and element.kind == "string":
            element = replace(element, codes=frozenset(str(code) for code in codes))
        shape[json_name] = element
    return shape


def _element(annotation: Any) -> _Element:
    many = False
    tp = _without_none(annotation)
    if typing.get_origin(tp) in (list, typing.List):  # noqa: UP006 - the models use typing.List
        many = True
        (tp,) = typing.get_args(tp)
        tp = _without_none(tp)
    primitive = _primitive(tp)
    if primitive is not None:
        return _Element(_KIND_OF_PRIMITIVE.get(primitive, "string"), many, primitive=primitive)
    get_model = getattr(tp, "get_model_klass", None)
    if get_model is None:
        raise TypeError(f"no R4 JSON kind for {annotation!r}")
    if getattr(tp, "__name__", "") == "ResourceType":
        return _Element("resource", many)
    return _Element("object", many, get_model())


def _primitive(tp: Any) -> str | None:
    """The R4 primitive behind an annotation, None for a complex type or a resource."""
    if tp is bool:
        return "boolean"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        # e.g. an element id that is Id or String: the wider rule applies
        found = {_primitive(arg) for arg in typing.get_args(tp)}
        return "string" if "string" in found else found.pop() if len(found) == 1 else None
    if typing.get_origin(tp) is typing.Annotated:
        for marker in reversed(typing.get_args(tp)[1:]):
            name = _PRIMITIVES.get(type(marker).__name__)
            if name is not None:
                return name
    return None


def _without_none(annotation: Any) -> Any:
    """Optional[X] -> X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        return typing.Union[tuple(args)]  # noqa: UP007 - built from a runtime tuple
    return annotation
