"""The kommune -> KE directory (gateway/directory.py) and the shipped default file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gateway.config import DEFAULT_DIRECTORY
from gateway.directory import Directory, DirectoryError, load_directory

# The 27 kommuner of Møre og Romsdal from 2024-01-01 (SSB), after Ålesund and Haram split.
MORE_OG_ROMSDAL = {
    "1505": "Kristiansund",
    "1506": "Molde",
    "1508": "Ålesund",
    "1511": "Vanylven",
    "1514": "Sande",
    "1515": "Herøy",
    "1516": "Ulstein",
    "1517": "Hareid",
    "1520": "Ørsta",
    "1525": "Stranda",
    "1528": "Sykkylven",
    "1531": "Sula",
    "1532": "Giske",
    "1535": "Vestnes",
    "1539": "Rauma",
    "1547": "Aukra",
    "1554": "Averøy",
    "1557": "Gjemnes",
    "1560": "Tingvoll",
    "1563": "Sunndal",
    "1566": "Surnadal",
    "1573": "Smøla",
    "1576": "Aure",
    "1577": "Volda",
    "1578": "Fjord",
    "1579": "Hustadvika",
    "1580": "Haram",
}
# Kommuner of the former Nord-Trøndelag fylke (now 50xx in Trøndelag).
NORD_TRONDELAG = {
    "5006": "Steinkjer",
    "5007": "Namsos",
    "5035": "Stjørdal",
    "5037": "Levanger",
    "5038": "Verdal",
}


@pytest.fixture(scope="module")
def default() -> Directory:
    return load_directory(DEFAULT_DIRECTORY)


# --- the shipped default ---------------------------------------------------------------------


def test_default_file_is_shipped_inside_the_package() -> None:
    assert DEFAULT_DIRECTORY.is_file()
    assert DEFAULT_DIRECTORY.name == "directory.toml"


def test_default_has_the_27_kommuner_of_more_og_romsdal(default: Directory) -> None:
    assert len(MORE_OG_ROMSDAL) == 27
    listed_15xx = {nr for nr in default.entries if nr.startswith("15")}
    assert listed_15xx == set(MORE_OG_ROMSDAL)
    for nr, name in MORE_OG_ROMSDAL.items():
        unit = default.unit_for(nr)
        assert unit is not None, nr
        assert unit.kommune_name == name
        assert unit.kommune_nr == nr


def test_default_has_no_pre_2024_more_og_romsdal_numbers(default: Directory) -> None:
    # 1507 Ålesund (2020-2023) was split into 1508 Ålesund and 1580 Haram.
    assert default.unit_for("1507") is None
    # The 15xx numbers before 2020 had Ålesund as 1504 and Molde as 1502.
    assert default.unit_for("1504") is None
    assert default.unit_for("1502") is None


@pytest.mark.parametrize(
    ("nr", "name"), [("1112", "Lund"), ("5001", "Trondheim"), *NORD_TRONDELAG.items()]
)
def test_default_has_lund_trondheim_and_nord_trondelag(
    default: Directory, nr: str, name: str
) -> None:
    unit = default.unit_for(nr)
    assert unit is not None
    assert unit.kommune_name == name
    assert name in unit.name  # "Koordinerende enhet, <kommune> kommune"


def test_default_has_some_nord_trondelag_50xx(default: Directory) -> None:
    listed = {nr for nr in default.entries if nr.startswith("50") and nr != "5001"}
    assert len(listed) >= 3
    assert listed <= set(NORD_TRONDELAG)


def test_default_lists_only_the_documented_kommuner(default: Directory) -> None:
    expected = set(MORE_OG_ROMSDAL) | set(NORD_TRONDELAG) | {"1112", "5001"}
    assert set(default.entries) == expected


def test_default_her_ids_are_unique(default: Directory) -> None:
    her_ids = [e.unit.her_id for e in default.entries.values()]
    assert len(her_ids) == len(set(her_ids)) == len(default.entries)


def test_default_her_ids_are_flagged_fictitious(default: Directory) -> None:
    assert default.fictitious_her_ids is True
    # The file documents its fictitious scheme: 99 000 000 + kommunenummer.
    for nr, entry in default.entries.items():
        assert entry.unit.her_id == 99_000_000 + int(nr)


def test_default_adapters_are_modules_in_adapters(default: Directory) -> None:
    names = default.adapter_names()
    assert names
    for name in names:
        assert importlib.util.find_spec(f"adapters.{name}") is not None, name


def test_unit_for_unknown_kommune_is_none(default: Directory) -> None:
    assert default.unit_for("0301") is None
    assert default.unit_for("") is None


# --- loading files ---------------------------------------------------------------------------


def entry(nr: str, her_id: int | str, *, name: str = "Testkommune", extra: str = "") -> str:
    her = her_id if isinstance(her_id, int) else f'"{her_id}"'
    return f"""
[[kommune]]
nr = "{nr}"
name = "{name}"
[kommune.ke]
name = "Koordinerende enhet, {name} kommune"
her_id = {her}
adapter = "ke_inbox"
{extra}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[meta]\nfictitious_her_ids = false\n"
        + entry("1506", 81234567, name="Molde", extra='[kommune.ke.settings]\ninbox = "molde"\n')
        + entry(" 1508 ", 81234568, name="Ålesund"),
    )
    d = load_directory(path)
    assert set(d.entries) == {"1506", "1508"}
    assert d.fictitious_her_ids is False
    molde = d.unit_for("1506")
    assert molde is not None
    assert (molde.kommune_name, molde.her_id, molde.adapter) == ("Molde", 81234567, "ke_inbox")
    assert dict(d.entries["1506"].settings) == {"inbox": "molde"}
    assert dict(d.entries["1508"].settings) == {}
    assert d.adapter_names() == {"ke_inbox"}


def test_without_meta_her_ids_are_not_flagged_fictitious(tmp_path: Path) -> None:
    d = load_directory(write(tmp_path, entry("1506", 81234567)))
    assert d.fictitious_her_ids is False


def assert_refused(path: Path, *fragments: str) -> str:
    with pytest.raises(DirectoryError) as info:
        load_directory(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_duplicate_kommune_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, entry("1506", 81234567) + entry("1506", 81234568))
    message = assert_refused(path, str(path), "1506")
    assert "twice" in message


def test_duplicate_kommune_is_refused_after_normalising_whitespace(tmp_path: Path) -> None:
    path = write(tmp_path, entry("1506", 81234567) + entry(" 1506", 81234568))
    assert_refused(path, "1506", "twice")


def test_duplicate_her_id_is_refused_naming_both_kommuner(tmp_path: Path) -> None:
    path = write(tmp_path, entry("1506", 81234567) + entry("1508", 81234567))
    assert_refused(path, str(path), "81234567", "1506", "1508")


@pytest.mark.parametrize("nr", ["150", "15066", "15a6", "0099", "", "Molde"])
def test_bad_kommune_number_is_refused(tmp_path: Path, nr: str) -> None:
    path = write(tmp_path, entry("1505", 81234566) + entry(nr, 81234567))
    # The second entry is the bad one, and the message says which field.
    assert_refused(path, str(path), "#2", "kommune_nr")


def test_kommune_number_as_toml_integer_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, entry("1506", 81234567).replace('nr = "1506"', "nr = 1506"))
    assert_refused(path, "#1", "kommune_nr")


@pytest.mark.parametrize("her_id", [0, -5, 1_000_000_000, "abc"])
def test_bad_her_id_is_refused(tmp_path: Path, her_id: int | str) -> None:
    path = write(tmp_path, entry("1506", her_id))
    assert_refused(path, "#1", "her_id")


@pytest.mark.parametrize("missing", ["name", "adapter", "her_id"])
def test_ke_missing_a_field_is_refused(tmp_path: Path, missing: str) -> None:
    lines = [line for line in entry("1506", 81234567).splitlines() if not line.startswith(missing)]
    path = write(tmp_path, "\n".join(lines))
    assert_refused(path, "#1", missing)


def test_kommune_without_ke_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[[kommune]]\nnr = "1506"\nname = "Molde"\n')
    assert_refused(path, "#1")


@pytest.mark.parametrize(
    "text",
    ["", "# nothing here\n", "[meta]\nfictitious_her_ids = true\n", "kommune = []\n"],
)
def test_empty_directory_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert_refused(path, str(path), "no kommune")


@pytest.mark.parametrize(
    "text",
    [
        "this is not toml\n",
        "[[kommune]\nnr = 1506\n",
        '{"kommune": [{"nr": "1506"}]}',
        'nr = "1506"\nnr = "1508"\n',  # a key defined twice
    ],
)
def test_not_toml_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert_refused(path, str(path), "cannot read")


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "directory.toml"
    path.write_bytes(entry("1506", 81234567, name="Ålesund").encode("latin-1"))
    assert_refused(path, str(path))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert_refused(path, str(path), "cannot read")


def test_directory_instead_of_file_is_refused(tmp_path: Path) -> None:
    assert_refused(tmp_path, str(tmp_path))


@pytest.mark.parametrize(
    "text",
    [
        # [kommune] (a table) written where [[kommune]] (an array of tables) is meant
        '[kommune]\nnr = "1506"\nname = "Molde"\n',
        # kommune as a plain value
        'kommune = "1506"\n',
        # ke as a plain value instead of a table
        '[[kommune]]\nnr = "1506"\nname = "Molde"\nke = "Koordinerende enhet"\n',
    ],
)
def test_wrong_shape_is_a_directory_error_not_a_crash(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert_refused(path, str(path))


# --------------------------------------------------------------------------- KEs' orgnr (issue 8)


def test_every_shipped_ke_has_an_orgnr_of_its_own(default: Directory) -> None:
    orgnrs = [e.unit.orgnr for e in default.entries.values()]
    assert None not in orgnrs
    assert len(set(orgnrs)) == len(orgnrs)
    nr, first = next(iter(default.entries.items()))
    assert default.kommuner_of(frozenset({first.unit.orgnr or ""})) == {nr}
    assert default.orgnr_of_her_id(first.unit.her_id) == first.unit.orgnr


def test_a_ke_orgnr_is_checked_and_unique(tmp_path: Path) -> None:
    good = entry("1506", 81234567).replace(
        'adapter = "ke_inbox"', 'orgnr = "991506004"\nadapter = "ke_inbox"'
    )
    loaded = load_directory(write(tmp_path, good))
    assert loaded.kommuner_of(frozenset({"991506004"})) == {"1506"}
    assert loaded.kommuner_of(frozenset({"983974899"})) == frozenset()
    wrong_check = good.replace("991506004", "991506005")
    with pytest.raises(DirectoryError, match="kommune entry #1"):
        load_directory(write(tmp_path, wrong_check))
    twice = good + entry("1508", 81234568).replace(
        'adapter = "ke_inbox"', 'orgnr = "991506004"\nadapter = "ke_inbox"'
    )
    with pytest.raises(DirectoryError, match="orgnr 991506004 is listed twice"):
        load_directory(write(tmp_path, twice))
