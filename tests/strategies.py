"""Hypothesis strategies for the canonical model (gateway/domain/model.py) and for JSON junk.

Everything here is built from the rules in ../shared/standards/README.md and the FHIR R4 data
types, never from the code under test:

- person ids: ``d d m m y y i i i k1 k2`` with the mod-11 control digits (both the pre-2032
  rule and the 2032 rule where k1 may leave a remainder 0-3), D-nummer = first digit + 4,
  felles hjelpenummer = first digit 8 or 9, synthetic test ids = month + 40 or + 80;
- text: what an R4 ``string`` may hold (JSON Schema pattern ``^[ \\r\\n\\t\\S]+$``: no
  whitespace but space, tab, CR and LF; the spec adds "SHOULD not contain code points below
  32"), without surrounding whitespace (see ``fhir_text``);
- ``source_endpoint`` is an R4 ``url`` (no whitespace at all), ``interpreter_language`` an R4
  ``code`` (single spaces between non-whitespace runs), ``sent_at`` an R4 ``instant`` (a fixed
  UTC offset in whole minutes between -13:59 and +14:00, not a named zone).

Where the model accepts more than FHIR can carry, the narrower FHIR rule is used here and the
gap is tested separately (tests/unit/test_fhir_notice.py, ``test_model_values_fhir_cannot_carry``).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import strategies as st

from gateway.domain.identifiers import PersonIdKind
from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    Contact,
    NeedNotice,
    NoticeKind,
    Organisation,
    Patient,
    PersonName,
    Sender,
)

# --------------------------------------------------------------------------- person ids

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def with_control_digits(first_nine: str, k1_remainder: int = 0) -> str | None:
    """The 11-digit id for ``first_nine``, or None when no such number can be issued.

    k1 is chosen so that (d1..d9 . K1_WEIGHTS + k1) mod 11 == ``k1_remainder``: 0 is the
    pre-2032 rule (k1 = 11 - sum mod 11, 11 -> 0), 1-3 the extra values of the 2032 rule.
    k2 = 11 - (d1..d9,k1 . K2_WEIGHTS) mod 11 (11 -> 0). A control digit of 10 is never issued.
    """
    digits = [int(c) for c in first_nine]
    assert len(digits) == 9
    assert 0 <= k1_remainder <= 3
    k1 = (k1_remainder - sum(w * d for w, d in zip(K1_WEIGHTS, digits, strict=True))) % 11
    if k1 == 10:
        return None
    k2 = -sum(w * d for w, d in zip(K2_WEIGHTS, [*digits, k1], strict=True)) % 11
    if k2 == 10:
        return None
    return f"{first_nine}{k1}{k2}"


def first_valid(nine_digit_candidates: Iterator[str], k1_remainder: int = 0) -> str:
    for first_nine in nine_digit_candidates:
        full = with_control_digits(first_nine, k1_remainder)
        if full is not None:
            return full
    raise AssertionError("no issuable number among the candidates")


@st.composite
def person_ids(
    draw: st.DrawFn,
    kinds: tuple[PersonIdKind, ...] = (PersonIdKind.FNR, PersonIdKind.DNR, PersonIdKind.FHN),
    synthetic: bool | None = None,
) -> tuple[str, PersonIdKind]:
    """A valid (number, kind). ``synthetic`` None: either; FHN numbers are never synthetic."""
    kind = draw(st.sampled_from(kinds))
    k1_remainder = draw(st.sampled_from([0, 0, 1, 2, 3]))
    individual = draw(st.integers(0, 999))
    if kind is PersonIdKind.FHN:
        prefix = f"{draw(st.sampled_from('89'))}{draw(st.integers(0, 10**5 - 1)):05d}"
    else:
        born = draw(st.dates(min_value=dt.date(1854, 1, 1), max_value=dt.date(2039, 12, 31)))
        day = born.day + (40 if kind is PersonIdKind.DNR else 0)
        is_synthetic = draw(st.booleans()) if synthetic is None else synthetic
        month = born.month + (draw(st.sampled_from([40, 80])) if is_synthetic else 0)
        prefix = f"{day:02d}{month:02d}{born.year % 100:02d}"
    # walk the individual number until the control digits can be issued (at most 1 in 6 fail)
    candidates = (f"{prefix}{(individual + i) % 1000:03d}" for i in range(1000))
    return first_valid(candidates, k1_remainder), kind


# --------------------------------------------------------------------------- text

#: letters every Norwegian name and need text may hold
NORWEGIAN = "æøåÆØÅéü"
#: characters an R4 string allows that are whitespace (the rest must be non-whitespace)
FHIR_WHITESPACE = " \t\r\n"
#: any non-whitespace, non-control character: no C0/C1 controls (Cc), no Unicode space
#: separators (Zs, Zl, Zp: NBSP, U+2028, ideographic space, ... which the R4 JSON Schema's
#: ``\\S`` rejects), no lone surrogates; U+FEFF is whitespace to ECMAScript's ``\\s``
_OTHER = st.characters(
    exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="\ufeff\ufffe\uffff"
)
FHIR_NON_WHITESPACE = st.one_of(
    st.sampled_from(NORWEGIAN), st.sampled_from("abcdefghijklmnopqrstuvwxyzAZ09-'."), _OTHER
)
FHIR_CHARACTER = st.one_of(FHIR_NON_WHITESPACE, FHIR_NON_WHITESPACE, st.sampled_from(" \t\r\n"))


def fhir_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """An R4 string that satisfies the model's NonBlank, without surrounding whitespace.

    The model would take surrounding whitespace too; that case is tested on its own.
    """
    return (
        st.text(FHIR_CHARACTER, min_size=1, max_size=max_size)
        .map(lambda s: s.strip(FHIR_WHITESPACE))
        .filter(bool)
    )


def fhir_code(max_size: int = 20) -> st.SearchStrategy[str]:
    """An R4 code: runs of non-whitespace separated by single spaces."""
    run = st.text(FHIR_NON_WHITESPACE, min_size=1, max_size=max_size)
    return st.lists(run, min_size=1, max_size=3).map(" ".join)


def fhir_url() -> st.SearchStrategy[str]:
    """An R4 url: no whitespace at all (realistic ones and arbitrary ones)."""
    return st.one_of(
        st.integers(1, 10**9 - 1).map(lambda her: f"urn:oid:2.16.578.1.12.4.1.2:{her}"),
        st.sampled_from(
            ["https://fhir.helse-mr.no/ip", "urn:uuid:0a8f7f3e-9d9a-4a55-8a70-0a8f7f3e9d9a"]
        ),
        st.text(FHIR_NON_WHITESPACE, min_size=1, max_size=60),
    )


def distinctive_name() -> st.SearchStrategy[str]:
    """A name that cannot occur by chance in an error text (for the privacy checks)."""
    return fhir_text(20).map(lambda s: f"Ǿ{s}ʬ")


# --------------------------------------------------------------------------- the model

HER_IDS = st.integers(1, 10**9 - 1)
#: Brønnøysundregistrene: the first eight digits weighted 3, 2, 7, 6, 5, 4, 3, 2 (modulus 11)
ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def with_orgnr_check_digit(first_eight: str) -> str | None:
    """The organisasjonsnummer for ``first_eight``, or None when no check digit exists.

    check = 11 - (weighted sum mod 11); remainder 0 gives check digit 0, remainder 1 would
    give 10, which is no digit: no organisation number is issued with those eight digits.
    """
    assert len(first_eight) == 8
    remainder = sum(w * int(c) for w, c in zip(ORGNR_WEIGHTS, first_eight, strict=True)) % 11
    if remainder == 1:
        return None
    check = 0 if remainder == 0 else 11 - remainder
    return f"{first_eight}{check}"


#: any valid organisasjonsnummer (about 1 prefix in 11 has none and is skipped)
VALID_ORGNRS = (
    st.text("0123456789", min_size=8, max_size=8)
    .map(with_orgnr_check_digit)
    .filter(lambda orgnr: orgnr is not None)
    .map(lambda orgnr: str(orgnr))
)

#: organisation numbers as the model takes them: valid ones only
ORGNRS = VALID_ORGNRS
KOMMUNE_NRS = st.builds(
    lambda county, rest: f"{county:02d}{rest:02d}", st.integers(1, 99), st.integers(0, 99)
)

#: FHIR instant: offsets ±hh:mm with hh 00-13, or exactly +/-14:00
OFFSETS = st.integers(-(13 * 60 + 59), 14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
SENT_AT = st.datetimes(
    min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9998, 12, 30), timezones=OFFSETS
)


def organisations(*, identified: bool) -> st.SearchStrategy[Organisation]:
    """``identified``: at least one of HER-id and organisasjonsnummer (the sender's trust).

    A trust without either is refused with E20 by design (see the negative tests).
    """
    if identified:
        ids = st.one_of(
            st.tuples(HER_IDS, st.none()),
            st.tuples(st.none(), ORGNRS),
            st.tuples(HER_IDS, ORGNRS),
        )
    else:
        ids = st.tuples(st.none() | HER_IDS, st.none() | ORGNRS)
    return st.builds(
        lambda name, pair: Organisation(name=name, her_id=pair[0], orgnr=pair[1]),
        fhir_text(),
        ids,
    )


def senders() -> st.SearchStrategy[Sender]:
    contacts = st.builds(
        Contact,
        name=fhir_text(),
        phone=st.none() | st.from_regex(r"\+47[0-9]{8}", fullmatch=True) | fhir_text(20),
    )
    return st.builds(
        Sender,
        organisation=organisations(identified=True),
        department=st.none() | organisations(identified=False),
        contact=st.none() | contacts,
    )


@st.composite
def patients(
    draw: st.DrawFn, *, synthetic: bool | None = None, distinctive: bool = False
) -> Patient:
    number, kind = draw(person_ids(synthetic=synthetic))
    names = distinctive_name() if distinctive else fhir_text()
    return Patient(
        person_id=number,
        id_kind=kind,
        name=PersonName(given=draw(names), family=draw(names)),
        kommune_nr=draw(st.none() | KOMMUNE_NRS),
    )


CONSENTS = st.builds(
    ConsentAttestation,
    given_by=st.sampled_from(ConsentGiver),
    lacks_capacity_reason=st.none() | fhir_text(80),
    given_on=st.dates(),
    reference=st.none() | fhir_text(),
)


def need_notices(
    *, synthetic: bool | None = None, distinctive_names: bool = False
) -> st.SearchStrategy[NeedNotice]:
    """Any valid notice FHIR can carry; every optional field is sometimes None."""
    return st.builds(
        NeedNotice,
        sender_message_id=st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True),
        sent_at=SENT_AT,
        source_endpoint=fhir_url(),
        patient=patients(synthetic=synthetic, distinctive=distinctive_names),
        sender=senders(),
        requested=st.lists(
            st.sampled_from(NoticeKind), min_size=1, max_size=len(NoticeKind), unique=True
        ).map(tuple),
        need=fhir_text(200),
        urgent=st.booleans(),
        next_of_kin_involved=st.booleans(),
        health_trust_takes_part=st.booleans(),
        existing_coordinator=st.booleans(),
        interpreter_language=st.none()
        | st.sampled_from(["ar", "so", "ti", "uk", "pl", "se", "nb-NO", "fa-AF"])
        | fhir_code(),
        consent=st.none() | CONSENTS,
    )


# --------------------------------------------------------------------------- JSON junk

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)


def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Any value orjson.loads could return."""
    return st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=max_leaves,
    )


def json_kind(value: Any) -> str:
    """The JSON type of a value (bool is not a number here)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def paths(value: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every position below the root, parents before children."""
    children: Iterator[tuple[str | int, Any]]
    if isinstance(value, dict):
        children = iter(value.items())
    elif isinstance(value, list):
        children = iter(enumerate(value))
    else:
        return
    for key, child in children:
        yield (*at, key)
        yield from paths(child, (*at, key))


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


MUTATIONS = ("delete", "retype", "null", "swap-string", "empty", "add-key", "duplicate")


def _other_kind(kind: str) -> Callable[[Any], bool]:
    """A filter for JSON values not of ``kind`` (bound here, not to the loop variable)."""
    return lambda value: json_kind(value) != kind


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any], max_mutations: int = 3) -> dict[str, Any]:
    """``document`` with 1 to ``max_mutations`` random edits somewhere below the root.

    Edits: delete a key or list item; replace a value with a JSON value of another type, with
    null, with an empty value of its type, or (strings) with another string of the document
    (cross-wired references, resource types, codes); add an unknown key; duplicate a list item.
    """
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, max_mutations))):
        where = list(paths(doc))
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        old = parent[key]
        other_kind = _other_kind(json_kind(old))
        op = draw(st.sampled_from(MUTATIONS))
        if op == "delete":
            del parent[key]
        elif op == "retype":
            parent[key] = draw(json_values().filter(other_kind))
        elif op == "null":
            parent[key] = None
        elif op == "swap-string" and isinstance(old, str):
            parent[key] = draw(st.sampled_from(strings_in(doc)))
        elif op == "empty" and isinstance(old, str | list | dict):
            parent[key] = type(old)()
        elif op == "add-key" and isinstance(old, dict):
            old[draw(st.text(min_size=1, max_size=8))] = draw(json_values())
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(int(key), copy.deepcopy(old))
        else:
            parent[key] = draw(json_values().filter(other_kind))
    return doc


# --------------------------------------------------------------------------- organisasjonsnumre
