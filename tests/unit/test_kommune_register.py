"""The national kommune register (mappings/codes/kommune_register.py, data/kommuner.json).

The expected answers below are written from the sources, never by running the code:

- SSB KLASS 131 "Standard for kommuneinndeling": its change table from 1977 to 2024-01-02 (as
  fetched by the public repository opisthokonta/kommuneendringer, data-raw/changetables.json),
  the version "Kommuneinndeling 2024" and the codes valid on 2026-01-01 (codesAt).
- ssb.no, "Hvordan ivareta historikken med ny kommune- og fylkesstruktur": Bærum was 0219 until
  2019, 3024 in 2020-2023 and 3201 from 2024; on 2024-01-01 seven fylker and 115 kommuner got new
  numbers, and 1507 Ålesund was split into 1508 Ålesund and 1580 Haram.
- regjeringen.no, "Regjeringa føreslår å atterreise Haram kommune" (adopted by Stortinget): the
  whole former Haram kommune became a kommune again; the rest of 1507 stayed Ålesund.
- The kommuneendringer README: 1850 Tysfjord was split in 2020 between 1806 Narvik and 1875
  Hamarøy, 5012 Snillfjord in three (5055 Heim, 5056 Hitra, 5059 Orkland); 1001 Kristiansand,
  1017 Songdalen and 1018 Søgne became 4204; 0101 Halden became 3001 and then 3101.
- The public R package regtools (lauriejh/regtools), whose test snapshot maps the 2016 numbers to
  the 2024 ones: e.g. 0711 Svelvik -> 3301, 0627 Røyken -> 3203, 1444 Hornindal -> 1577,
  1534 Haram -> 1580, 1504 Ålesund -> 1508.
- Counts: 428 kommuner in 2016 and 356 in 2020 (SSB, quoted by Nettavisen in January 2020),
  422 in 2018 and 2019, 357 from 2024 (SSB, Kartverket); KS "Nye kommunenummer fra 2024": the
  2024 changes involved 114 kommuner.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.codes.kommune_register import (
    ChangeKind,
    Kommune,
    KommuneRegister,
    KommuneRegisterError,
    ResolutionStatus,
    kommune_register,
)

CURRENT = ResolutionStatus.CURRENT
REPLACED = ResolutionStatus.REPLACED
AMBIGUOUS = ResolutionStatus.AMBIGUOUS
UNKNOWN = ResolutionStatus.UNKNOWN

#: a day after the last change in the data, so the table does not depend on the clock
ON = dt.date(2026, 6, 1)
START = dt.date(2017, 1, 1)


@pytest.fixture(scope="module")
def register() -> KommuneRegister:
    return kommune_register()


REG = kommune_register()
ALL_NUMBERS = sorted(n for n in (f"{i:04d}" for i in range(10000)) if REG.known(n))


# -- known real cases ----------------------------------------------------------------------------

CASES: list[tuple[str, ResolutionStatus, list[tuple[str, str]]]] = [
    # current on 2026-06-01, names as SSB writes them
    ("0301", CURRENT, [("0301", "Oslo - Oslove")]),
    ("5001", CURRENT, [("5001", "Trondheim - Tråante")]),
    ("1506", CURRENT, [("1506", "Molde")]),
    ("1112", CURRENT, [("1112", "Lund")]),
    ("1508", CURRENT, [("1508", "Ålesund")]),
    ("1580", CURRENT, [("1580", "Haram")]),
    ("3201", CURRENT, [("3201", "Bærum")]),
    ("3911", CURRENT, [("3911", "Færder")]),
    ("5501", CURRENT, [("5501", "Tromsø")]),
    ("5610", CURRENT, [("5610", "Kárášjohka - Karasjok")]),
    ("5612", CURRENT, [("5612", "Guovdageaidnu - Kautokeino")]),
    ("5636", CURRENT, [("5636", "Unjárga - Nesseby")]),
    ("1826", CURRENT, [("1826", "Aarborte - Hattfjelldal")]),
    # renumbered, possibly several times
    ("1601", REPLACED, [("5001", "Trondheim - Tråante")]),  # 2018 Trøndelag
    ("1567", REPLACED, [("5061", "Rindal")]),  # 2019 Møre og Romsdal -> Trøndelag
    ("3005", REPLACED, [("3301", "Drammen")]),  # 2024 Viken split
    ("0219", REPLACED, [("3201", "Bærum")]),  # 0219 -> 3024 -> 3201
    ("3024", REPLACED, [("3201", "Bærum")]),
    ("0101", REPLACED, [("3101", "Halden")]),  # 0101 -> 3001 -> 3101
    ("3001", REPLACED, [("3101", "Halden")]),
    ("1902", REPLACED, [("5501", "Tromsø")]),  # 1902 -> 5401 -> 5501
    ("5401", REPLACED, [("5501", "Tromsø")]),
    ("2021", REPLACED, [("5610", "Kárášjohka - Karasjok")]),  # 2021 -> 5437 -> 5610
    ("0533", REPLACED, [("3234", "Lunner")]),  # Oppland -> Viken -> Akershus
    ("3053", REPLACED, [("3236", "Jevnaker")]),
    ("3018", REPLACED, [("3114", "Våler (Østfold)")]),  # renumbered and renamed
    ("5414", REPLACED, [("5516", "Gratangen - Rivtták")]),
    # merged
    ("1502", REPLACED, [("1506", "Molde")]),
    ("1543", REPLACED, [("1506", "Molde")]),  # Nesset
    ("0706", REPLACED, [("3907", "Sandefjord")]),  # 2017 Sandefjord+Andebu+Stokke -> 0710
    ("0719", REPLACED, [("3907", "Sandefjord")]),
    ("0720", REPLACED, [("3907", "Sandefjord")]),
    ("0710", REPLACED, [("3907", "Sandefjord")]),  # -> 3804 -> 3907
    ("0722", REPLACED, [("3911", "Færder")]),  # 2018 Nøtterøy+Tjøme -> 0729 Færder
    ("0723", REPLACED, [("3911", "Færder")]),
    ("0728", REPLACED, [("3909", "Larvik")]),  # 2018 Larvik+Lardal -> 0712
    ("0714", REPLACED, [("3903", "Holmestrand")]),  # 2018 Holmestrand+Hof -> 0715
    ("0713", REPLACED, [("3903", "Holmestrand")]),  # 2020 Sande (Vestfold) -> 3802
    ("1624", REPLACED, [("5054", "Indre Fosen")]),  # 2018 Rissa+Leksvik
    ("1718", REPLACED, [("5054", "Indre Fosen")]),
    ("0602", REPLACED, [("3301", "Drammen")]),
    ("0711", REPLACED, [("3301", "Drammen")]),  # Svelvik
    ("0625", REPLACED, [("3301", "Drammen")]),  # Nedre Eiker
    ("0627", REPLACED, [("3203", "Asker")]),  # Røyken
    ("1018", REPLACED, [("4204", "Kristiansand")]),  # Søgne
    ("1017", REPLACED, [("4204", "Kristiansand")]),  # Songdalen
    ("1444", REPLACED, [("1577", "Volda")]),  # Hornindal, across the county line
    ("1141", REPLACED, [("1103", "Stavanger")]),  # Finnøy; Stavanger kept its number
    ("5030", REPLACED, [("5001", "Trondheim - Tråante")]),  # Klæbu; Trondheim kept its number
    ("1662", REPLACED, [("5001", "Trondheim - Tråante")]),  # Klæbu before 2018
    ("1571", REPLACED, [("5055", "Heim")]),  # Halsa went whole into Heim
    ("2017", REPLACED, [("5603", "Hammerfest - Hámmerfeasta")]),  # Kvalsund
    # the 2024 split undid the 2020 merger: older numbers land on one side
    ("1534", REPLACED, [("1580", "Haram")]),
    ("1504", REPLACED, [("1508", "Ålesund")]),
    ("1523", REPLACED, [("1508", "Ålesund")]),  # Ørskog
    ("1529", REPLACED, [("1508", "Ålesund")]),  # Skodje
    ("1546", REPLACED, [("1508", "Ålesund")]),  # Sandøy
    # splits: an operator must choose
    ("1507", AMBIGUOUS, [("1508", "Ålesund"), ("1580", "Haram")]),
    ("1850", AMBIGUOUS, [("1806", "Narvik"), ("1875", "Hábmer - Hamarøy")]),
    ("5012", AMBIGUOUS, [("5055", "Heim"), ("5056", "Hitra"), ("5059", "Orkland")]),
    ("1613", AMBIGUOUS, [("5055", "Heim"), ("5056", "Hitra"), ("5059", "Orkland")]),
    # not kommunenummer
    ("9999", UNKNOWN, []),  # SSB's "Uoppgitt"
    ("2100", UNKNOWN, []),  # Svalbard is not a kommune
    ("0000", UNKNOWN, []),
    ("1154", UNKNOWN, []),  # Vindafjord's number until 2006, before the register's scope
]


@pytest.mark.parametrize(("nr", "status", "expected"), CASES, ids=[c[0] for c in CASES])
def test_known_cases(
    register: KommuneRegister,
    nr: str,
    status: ResolutionStatus,
    expected: list[tuple[str, str]],
) -> None:
    got = register.resolve(nr, ON)
    assert got.status is status, got.reason
    assert [(k.nr, k.name) for k in got.candidates] == expected
    assert got.kommune == (Kommune(*expected[0]) if status in (CURRENT, REPLACED) else None)
    assert got.reason


@pytest.mark.parametrize(
    ("nr", "on", "status", "expected"),
    [
        ("1507", dt.date(2022, 6, 1), CURRENT, [("1507", "Ålesund")]),
        ("1534", dt.date(2021, 1, 1), REPLACED, [("1507", "Ålesund")]),  # Haram inside Ålesund
        ("1534", dt.date(2019, 12, 31), CURRENT, [("1534", "Haram")]),
        ("3005", dt.date(2023, 12, 31), CURRENT, [("3005", "Drammen")]),
        ("3005", dt.date(2024, 1, 1), REPLACED, [("3301", "Drammen")]),
        ("3301", dt.date(2023, 12, 31), UNKNOWN, []),  # not yet in use
        ("0602", dt.date(2021, 3, 1), REPLACED, [("3005", "Drammen")]),
        ("0706", dt.date(2016, 12, 31), CURRENT, [("0706", "Sandefjord")]),
        ("1601", dt.date(2017, 12, 31), CURRENT, [("1601", "Trondheim")]),
        ("1601", dt.date(2019, 6, 1), REPLACED, [("5001", "Trondheim")]),  # renamed in 2023
        ("5001", dt.date(2023, 1, 1), CURRENT, [("5001", "Trondheim - Tråante")]),
        ("0301", dt.date(2025, 6, 1), CURRENT, [("0301", "Oslo")]),  # Oslove from 2026
        ("5025", dt.date(2022, 6, 1), CURRENT, [("5025", "Røros")]),
        ("5025", dt.date(2023, 6, 1), CURRENT, [("5025", "Røros - Rosse")]),
        ("1850", dt.date(2019, 12, 31), CURRENT, [("1850", "Tysfjord - Divtasvuodna")]),
    ],
)
def test_answers_depend_on_the_date(
    register: KommuneRegister,
    nr: str,
    on: dt.date,
    status: ResolutionStatus,
    expected: list[tuple[str, str]],
) -> None:
    got = register.resolve(nr, on)
    assert got.status is status, got.reason
    assert [(k.nr, k.name) for k in got.candidates] == expected


def test_default_date_is_today(register: KommuneRegister) -> None:
    today = dt.date.today()
    assert register.resolve("1601") == register.resolve("1601", today)
    assert register.current("0301") == register.current("0301", today)


def test_current(register: KommuneRegister) -> None:
    assert register.current("5001", ON) == Kommune("5001", "Trondheim - Tråante")
    assert register.current("1601", ON) is None
    assert register.current("9999", ON) is None
    assert register.current("1507", dt.date(2023, 1, 1)) == Kommune("1507", "Ålesund")


@pytest.mark.parametrize(
    ("on", "count"),
    [
        (dt.date(2016, 12, 31), 428),
        (dt.date(2017, 1, 1), 426),
        (dt.date(2018, 1, 1), 422),
        (dt.date(2019, 12, 31), 422),
        (dt.date(2020, 1, 1), 356),
        (dt.date(2023, 12, 31), 356),
        (dt.date(2024, 1, 1), 357),
        (ON, 357),
    ],
)
def test_counts(register: KommuneRegister, on: dt.date, count: int) -> None:
    assert len(register.kommuner(on)) == count


def test_2024_gave_115_kommuner_new_numbers(register: KommuneRegister) -> None:
    """SSB: 115 kommuner got new numbers; KS: 114 kommuner of 2023 were involved."""
    before = register.valid_on(dt.date(2023, 12, 31))
    after = register.valid_on(dt.date(2024, 1, 1))
    assert len(after - before) == 115
    assert len(before - after) == 114


def test_the_splits_since_2017(register: KommuneRegister) -> None:
    splits = {(c.date, c.old[0].nr) for c in register.changes if c.kind is ChangeKind.SPLIT}
    assert splits == {
        (dt.date(2020, 1, 1), "1850"),
        (dt.date(2020, 1, 1), "5012"),
        (dt.date(2024, 1, 1), "1507"),
    }


def test_ambiguous_reason_names_the_candidates(register: KommuneRegister) -> None:
    got = register.resolve("1507", ON)
    assert "1508 Ålesund" in got.reason
    assert "1580 Haram" in got.reason
    assert "2024-01-01" in got.reason
    assert [c.kind for c in got.via] == [ChangeKind.SPLIT]


def test_replaced_reason_shows_the_chain(register: KommuneRegister) -> None:
    got = register.resolve("0219", ON)
    assert got.reason.startswith("0219 Bærum is now 3201 Bærum")
    assert [(c.date.year, c.kind) for c in got.via] == [
        (2020, ChangeKind.RENUMBERED),
        (2024, ChangeKind.RENUMBERED),
    ]


def test_the_data_file_states_source_and_dates(register: KommuneRegister) -> None:
    assert "131" in str(register.source["classification"])
    assert "ssb.no" in str(register.source["url"])
    assert register.valid_from == dt.date(2026, 1, 1)
    assert register.changes_since == START
    assert register.compiled is not None
    assert register.compiled >= register.valid_from


# -- properties over the data --------------------------------------------------------------------


def test_current_numbers_are_four_digits_and_unique(register: KommuneRegister) -> None:
    kommuner = register.kommuner(ON)
    numbers = [k.nr for k in kommuner]
    assert len(numbers) == len(set(numbers)) == 357
    assert all(len(n) == 4 and n.isascii() and n.isdigit() for n in numbers)
    assert all(n[:2] != "00" for n in numbers)


def test_names_are_nfc_and_never_empty(register: KommuneRegister) -> None:
    for change in register.changes:
        for kommune in (*change.old, *change.new):
            assert kommune.name.strip() == kommune.name != ""
            assert unicodedata.is_normalized("NFC", kommune.name)


def test_every_historical_number_resolves_to_current_kommuner_only(
    register: KommuneRegister,
) -> None:
    current = register.valid_on(ON)
    historical = [n for n in ALL_NUMBERS if n not in current]
    assert len(historical) > 400
    for nr in historical:
        got = register.resolve(nr, ON)
        assert got.status in (REPLACED, AMBIGUOUS), (nr, got.reason)
        assert got.candidates
        assert {k.nr for k in got.candidates} <= current


def test_every_change_target_exists_on_the_change_date(register: KommuneRegister) -> None:
    for change in register.changes:
        before = change.date - dt.timedelta(days=1)
        for old in change.old:
            assert register.current(old.nr, before) == old, change
        for new in change.new:
            assert register.current(new.nr, change.date) == new, change


@settings(max_examples=300, deadline=None)
@given(
    nr=st.sampled_from(ALL_NUMBERS),
    on=st.dates(min_value=START, max_value=dt.date(2035, 12, 31)),
)
def test_resolution_is_consistent_on_any_date(nr: str, on: dt.date) -> None:
    got = REG.resolve(nr, on)
    valid = REG.valid_on(on)
    assert {k.nr for k in got.candidates} <= valid
    if nr in valid:
        assert got.status is CURRENT
        assert got.candidates == (Kommune(nr, REG.name_on(nr, on) or ""),)
    elif got.status is UNKNOWN:
        assert not got.candidates
        assert "came into use" in got.reason
    else:
        assert (got.status is REPLACED) == (len(got.candidates) == 1)
        assert got.via
        assert all(c.date <= on for c in got.via)
    assert got.nr == nr
    assert got.on == on


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=20), st.from_regex(r"[0-9]{11}", fullmatch=True)))
def test_anything_else_is_unknown_and_never_echoed(raw: str) -> None:
    got = REG.resolve(raw, ON)
    if len(raw) == 4 and raw.isascii() and raw.isdigit():
        return
    assert got.status is UNKNOWN
    assert got.nr == ""
    assert not got.candidates
    assert got.reason == REG.resolve("not a number", ON).reason  # nothing of the input in it


# -- the checks that keep a broken data file out -------------------------------------------------


def _data(**changes: Any) -> dict[str, Any]:
    k = [{"nr": "0001", "name": "A"}, {"nr": "0003", "name": "C"}]
    base: dict[str, Any] = {
        "valid_from": "2020-01-01",
        "changes_since": "2017-01-01",
        "kommuner": k,
        "changes": [
            {
                "date": "2018-01-01",
                "kind": "renumbered",
                "from": [{"nr": "0002", "name": "B"}],
                "to": [{"nr": "0003", "name": "C"}],
            }
        ],
    }
    base.update(changes)
    return base


def test_a_small_register_loads() -> None:
    reg = KommuneRegister.from_dict(_data())
    assert reg.resolve("0002", dt.date(2020, 1, 1)).kommune == Kommune("0003", "C")


@pytest.mark.parametrize(
    "broken",
    [
        {"kommuner": [{"nr": "0001", "name": "A"}]},  # 0003 is left valid but not listed
        {"kommuner": [{"nr": "0001", "name": "A"}, {"nr": "0003", "name": "C"}] * 2},
        {"kommuner": [{"nr": "001", "name": "A"}, {"nr": "0003", "name": "C"}]},
        {"kommuner": [{"nr": "0001", "name": "A"}, {"nr": "0003", "name": "X"}]},
        {  # a number that ends and is brought back: it would loop
            "changes": [
                {
                    "date": "2018-01-01",
                    "kind": "renumbered",
                    "from": [{"nr": "0002", "name": "B"}],
                    "to": [{"nr": "0003", "name": "C"}],
                },
                {
                    "date": "2019-01-01",
                    "kind": "renumbered",
                    "from": [{"nr": "0003", "name": "C"}],
                    "to": [{"nr": "0002", "name": "B"}],
                },
            ],
            "kommuner": [{"nr": "0001", "name": "A"}, {"nr": "0002", "name": "B"}],
        },
        {  # a "split" into one kommune is not a split
            "changes": [
                {
                    "date": "2018-01-01",
                    "kind": "split",
                    "from": [{"nr": "0002", "name": "B"}],
                    "to": [{"nr": "0003", "name": "C"}],
                }
            ]
        },
        {"changes": [{"date": "2018-13-01", "kind": "renumbered", "from": [], "to": []}]},
        {"changes": "none"},
    ],
)
def test_a_broken_data_file_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(KommuneRegisterError):
        KommuneRegister.from_dict(_data(**broken))


def test_not_json_is_refused() -> None:
    with pytest.raises(KommuneRegisterError):
        KommuneRegister.from_json("{not json")


def test_the_shipped_file_is_what_the_register_loads(register: KommuneRegister) -> None:
    from importlib.resources import files

    text = files("mappings.codes").joinpath("data/kommuner.json").read_text("utf-8")
    data = json.loads(text)
    assert [k["nr"] for k in data["kommuner"]] == [k.nr for k in register.kommuner(ON)]
    assert len(data["changes"]) == len(register.changes)
