"""Health trusts (helseforetak) in the directory file (gateway/directory.py).

A ``[[helseforetak]]`` table lists a trust that takes part in plans: name, HER-id, optional
organisasjonsnummer (mod-11 check digit, Brønnøysundregistrene), the adapter of its platform,
``active`` and ``[helseforetak.settings]``. Its HER-id is an address: it may be no KE's and no
other trust's. Error messages name the entry and the field, never what the settings hold
(they may hold credentials).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.directory import (
    Directory,
    DirectoryEntry,
    DirectoryError,
    HealthTrustEntry,
    load_directory,
)
from gateway.domain.identifiers import parse_orgnr
from gateway.domain.model import HealthTrust, Organisation

KE_HER = 81_234_567
HMR_HER = 81_100_001
#: Helse Møre og Romsdal HF
HMR_ORGNR = "983974899"
OTHER_HER = 81_100_002
#: a second valid organisasjonsnummer (check digit verified below)
OTHER_ORGNR = "983658725"
#: an orgnr of no trust in the file (NAV's, valid check digit)
NAV_ORGNR = "974749025"
#: in every trust's settings: no error message may repeat it
SECRET = "hemmelig-Ǿtoken-42ʬ"

KOMMUNE = f"""
[[kommune]]
nr = "1505"
name = "Kristiansund"
[kommune.ke]
name = "Koordinerende enhet, Kristiansund kommune"
her_id = {KE_HER}
adapter = "ke_inbox"
"""


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def trust(
    name: str | None = "Helse Møre og Romsdal HF",
    her_id: object = HMR_HER,
    *,
    orgnr: object = None,
    adapter: object = "fhir_rest",
    active: object = None,
    settings: str | None = f'base_url = "https://hf.example/fhir"\ntoken = "{SECRET}"',
) -> str:
    """A ``[[helseforetak]]`` table; None leaves a field out."""
    lines = ["", "[[helseforetak]]"]
    fields = {"name": name, "her_id": her_id, "orgnr": orgnr, "adapter": adapter, "active": active}
    lines += [f"{k} = {toml_value(v)}" for k, v in fields.items() if v is not None]
    if settings is not None:
        lines += ["[helseforetak.settings]", settings]
    return "\n".join(lines) + "\n"


HMR = trust(orgnr=HMR_ORGNR)
OTHER = trust(
    "Helse Nord-Trøndelag HF",
    OTHER_HER,
    orgnr=OTHER_ORGNR,
    adapter="nhn_msh",
    active=False,
    settings=None,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def directory(tmp_path: Path) -> Directory:
    return load_directory(write(tmp_path, KOMMUNE + HMR + OTHER))


def test_the_orgnrs_used_here_have_valid_check_digits() -> None:
    for orgnr in (HMR_ORGNR, OTHER_ORGNR, NAV_ORGNR):
        assert parse_orgnr(orgnr) == orgnr


# --------------------------------------------------------------------------- a valid file


def test_two_trusts_load(directory: Directory) -> None:
    assert set(directory.entries) == {"1505"}
    assert list(directory.health_trusts) == [HMR_HER, OTHER_HER]
    hmr, other = directory.health_trusts[HMR_HER], directory.health_trusts[OTHER_HER]
    assert isinstance(hmr, HealthTrustEntry)
    assert hmr.unit == HealthTrust(
        name="Helse Møre og Romsdal HF", her_id=HMR_HER, adapter="fhir_rest", orgnr=HMR_ORGNR
    )
    assert dict(hmr.settings) == {"base_url": "https://hf.example/fhir", "token": SECRET}
    assert hmr.active is True  # the default
    assert other.unit == HealthTrust(
        name="Helse Nord-Trøndelag HF", her_id=OTHER_HER, adapter="nhn_msh", orgnr=OTHER_ORGNR
    )
    assert dict(other.settings) == {}
    assert other.active is False


def test_a_trust_without_orgnr_or_settings(tmp_path: Path) -> None:
    d = load_directory(write(tmp_path, KOMMUNE + trust(settings=None, active=True)))
    entry = d.health_trusts[HMR_HER]
    assert entry.unit.orgnr is None
    assert dict(entry.settings) == {}
    assert entry.active is True


def test_a_file_without_trusts_has_none(tmp_path: Path) -> None:
    d = load_directory(write(tmp_path, KOMMUNE))
    assert dict(d.health_trusts) == {}
    assert d.adapter_names() == {"ke_inbox"}
    assert d.health_trust_of(Organisation(name="HMR", her_id=HMR_HER, orgnr=HMR_ORGNR)) is None


def test_orgnr_and_her_id_are_normalised(tmp_path: Path) -> None:
    d = load_directory(write(tmp_path, KOMMUNE + trust(her_id=f" {HMR_HER} ", orgnr=" 983974899 ")))
    assert d.health_trusts[HMR_HER].unit.orgnr == HMR_ORGNR


def test_adapter_names_include_the_trusts(directory: Directory) -> None:
    assert directory.adapter_names() == {"ke_inbox", "fhir_rest", "nhn_msh"}


# --------------------------------------------------------------------------- look-ups


@pytest.mark.parametrize(
    ("her_id", "orgnr", "expected"),
    [
        (HMR_HER, None, HMR_HER),
        (None, HMR_ORGNR, HMR_HER),
        (HMR_HER, HMR_ORGNR, HMR_HER),
        (123, HMR_ORGNR, HMR_HER),  # HER-id of no trust: the orgnr decides
        (KE_HER, OTHER_ORGNR, OTHER_HER),  # the KE's HER-id is no trust's
        (HMR_HER, OTHER_ORGNR, HMR_HER),  # the HER-id first
        (OTHER_HER, None, OTHER_HER),  # inactive, but still the trust the person works at
        (None, OTHER_ORGNR, OTHER_HER),
        (KE_HER, None, None),
        (123, None, None),
        (None, NAV_ORGNR, None),
        (123, NAV_ORGNR, None),
        (None, None, None),
    ],
)
def test_health_trust_of(
    directory: Directory, her_id: int | None, orgnr: str | None, expected: int | None
) -> None:
    found = directory.health_trust_of(Organisation(name="Avdeling", her_id=her_id, orgnr=orgnr))
    if expected is None:
        assert found is None
    else:
        assert found == directory.health_trusts[expected].unit


def test_no_orgnr_matches_no_orgnr(tmp_path: Path) -> None:
    """A trust listed without orgnr is not found for an organisation without one."""
    d = load_directory(write(tmp_path, KOMMUNE + trust(orgnr=None)))
    assert d.health_trust_of(Organisation(name="Atlanten ungdomsskole")) is None
    assert d.health_trust_of(Organisation(name="x", her_id=123)) is None
    found = d.health_trust_of(Organisation(name="x", her_id=HMR_HER))
    assert found is not None
    assert found.her_id == HMR_HER


def test_recipient_entry_of_a_trust(directory: Directory) -> None:
    assert directory.recipient_entry(None, HMR_HER) is directory.health_trusts[HMR_HER]
    # active = false takes it out of delivery
    assert directory.recipient_entry(None, OTHER_HER) is None
    assert directory.recipient_entry(None, 123) is None
    assert directory.recipient_entry(None, KE_HER) is None  # a KE is reached by its kommune
    assert directory.recipient_entry(None, None) is None


def test_recipient_entry_of_a_kommune(directory: Directory) -> None:
    ke = directory.recipient_entry("1505", None)
    assert ke is directory.entries["1505"]
    assert isinstance(ke, DirectoryEntry)
    assert ke.unit.kommune_nr == "1505"
    # a kommune number decides, whatever HER-id comes with it
    assert directory.recipient_entry("1505", HMR_HER) is directory.entries["1505"]
    assert directory.recipient_entry("1506", HMR_HER) is None


def test_recipient_unit_active_or_not(directory: Directory) -> None:
    assert directory.recipient_unit(None, HMR_HER) == directory.health_trusts[HMR_HER].unit
    assert directory.recipient_unit(None, OTHER_HER) == directory.health_trusts[OTHER_HER].unit
    assert directory.recipient_unit(None, 123) is None
    assert directory.recipient_unit(None, None) is None
    assert directory.recipient_unit("1505", None) == directory.entries["1505"].unit


# --------------------------------------------------------------------------- refused files


def assert_refused(path: Path, *fragments: str) -> str:
    """Refused with a one-line message about the file that names the problem with
    ``fragments`` and holds nothing from the settings nor from pydantic's error dump."""
    with pytest.raises(DirectoryError) as info:
        load_directory(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert message.startswith(f"{path}: "), message
    assert SECRET not in message, message
    assert "hf.example" not in message, message
    assert "\n" not in message, message
    for dump in ("validation error", "input_value", "errors.pydantic.dev", "type="):
        assert dump not in message, message
    return message


def test_her_id_of_a_ke_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, KOMMUNE + trust(her_id=KE_HER))
    assert_refused(path, str(KE_HER), "1505", "Helse Møre og Romsdal HF", "both")


def test_her_id_of_a_ke_written_as_a_string_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, KOMMUNE + trust(her_id=f"{KE_HER}"))
    assert_refused(path, str(KE_HER), "1505", "both")


def test_her_id_of_another_trust_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, KOMMUNE + HMR + trust("Sykehuset Namsos", HMR_HER, orgnr=OTHER_ORGNR))
    assert_refused(path, str(HMR_HER), "Helse Møre og Romsdal HF", "Sykehuset Namsos", "both")


@pytest.mark.parametrize("orgnr", [HMR_ORGNR, f" {HMR_ORGNR}"])
def test_an_orgnr_listed_twice_is_refused(tmp_path: Path, orgnr: str) -> None:
    path = write(tmp_path, KOMMUNE + HMR + trust("Sykehuset Namsos", OTHER_HER, orgnr=orgnr))
    assert_refused(path, HMR_ORGNR, "twice")


def test_two_trusts_without_orgnr_are_fine(tmp_path: Path) -> None:
    d = load_directory(write(tmp_path, KOMMUNE + trust() + trust("Sykehuset Namsos", OTHER_HER)))
    assert set(d.health_trusts) == {HMR_HER, OTHER_HER}


@pytest.mark.parametrize("adapter", ["ke_inbox", " ke_inbox "])
def test_the_ke_inbox_is_refused_for_a_trust(tmp_path: Path, adapter: str) -> None:
    path = write(tmp_path, KOMMUNE + HMR + trust("Sykehuset Namsos", OTHER_HER, adapter=adapter))
    assert_refused(path, "#2", "ke_inbox")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"her_id": 0}, "her_id"),
        ({"her_id": -5}, "her_id"),
        ({"her_id": 1_000_000_000}, "her_id"),
        ({"her_id": "abc"}, "her_id"),
        ({"her_id": 1.5}, "her_id"),
        ({"her_id": None}, "her_id"),  # missing
        ({"her_id": True}, "her_id"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"adapter": ""}, "adapter"),
        ({"adapter": None}, "adapter"),
        ({"adapter": 7}, "adapter"),
        ({"orgnr": "983974898"}, "orgnr"),  # wrong check digit
        ({"orgnr": "98397489"}, "orgnr"),
        ({"orgnr": "98397489X"}, "orgnr"),
        ({"orgnr": ""}, "orgnr"),
        ({"orgnr": 983974899}, "orgnr"),  # a TOML integer, not a string
    ],
)
def test_a_bad_field_is_refused_by_name(
    tmp_path: Path, fields: dict[str, object], named: str
) -> None:
    defaults: dict[str, object] = {"name": "Sykehuset Namsos", "her_id": OTHER_HER}
    name, her_id = (fields.get(k, v) for k, v in defaults.items())
    rest = {k: v for k, v in fields.items() if k not in defaults}
    path = write(tmp_path, KOMMUNE + HMR + trust(name, her_id, **rest))  # type: ignore[arg-type]
    assert_refused(path, "#2", named, "invalid")


@pytest.mark.parametrize(
    "settings_line",
    [f'settings = "{SECRET}"', "settings = 5", f'settings = ["{SECRET}"]'],
)
def test_settings_that_are_not_a_table_are_refused(tmp_path: Path, settings_line: str) -> None:
    path = write(tmp_path, KOMMUNE + trust(settings=None) + settings_line + "\n")
    assert_refused(path, "#1", "settings")


@pytest.mark.parametrize("active", ['"no"', "0", '"false"'])
def test_active_that_is_not_a_boolean_is_refused(tmp_path: Path, active: str) -> None:
    text = trust(settings=None) + f"active = {active}\n"
    assert_refused(write(tmp_path, KOMMUNE + text), "#1", "active")


@pytest.mark.parametrize(
    "text",
    [
        # a table where an array of tables is meant
        '[helseforetak]\nname = "HMR"\nher_id = 81100001\nadapter = "fhir_rest"\n',
        'helseforetak = "Helse Møre og Romsdal HF"\n',
        "helseforetak = [1, 2]\n",
    ],
)
def test_trusts_that_are_not_tables_are_refused(tmp_path: Path, text: str) -> None:
    assert_refused(write(tmp_path, text + KOMMUNE), "[[helseforetak]]")


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        # a misspelt active: read silently, the trust would stay routed
        (KOMMUNE + HMR.replace("adapter =", "activ = false\nadapter ="), "helseforetak", "activ"),
        (KOMMUNE.replace("adapter =", "actve = false\nadapter =") + HMR, "kommune.ke", "actve"),
        (KOMMUNE.replace('name = "Kristiansund"', 'nme = "Kristiansund"') + HMR, "#1", "nme"),
    ],
    ids=["trust", "kommune-ke", "kommune"],
)
def test_a_misspelt_key_is_refused(tmp_path: Path, text: str, where: str, key: str) -> None:
    assert_refused(write(tmp_path, text), where, "unknown key", key)
