"""What the plan tests over simulated platforms share: the platforms (the ``platforms``
fixture in conftest.py), a directory that points units at them, and the settings using it."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Settings
from gateway.demo.platforms.fhir_server import FhirPlatform
from gateway.demo.platforms.nhn_msh_server import NhnMessageService
from gateway.demo.samples import ke_orgnr
from gateway.domain.model import Organisation

GATEWAY_HER = 99999999
Platforms = tuple[FhirPlatform, NhnMessageService]


def started() -> Platforms:
    fhir, nhn = FhirPlatform(), NhnMessageService()
    fhir.start()
    nhn.start()
    return fhir, nhn


#: the NHN adapters: these tests exchange plain MsgHeads with the simulated NHN service
#: (``encryption = "none"``); signing and encryption are tested in test_adapter_nhn_msh.py and
#: test_inbound_nhn.py
NHN_ADAPTERS = frozenset({"nhn_msh", "sampro", "acos"})


def _plain(adapter: str) -> str:
    return 'encryption = "none"\n' if adapter in NHN_ADAPTERS else ""


def ke(nr: str, adapter: str, base_url: str) -> str:
    """A ``[[kommune]]`` entry whose KE (HER-id 99 000 000 + nr) is on ``base_url``."""
    return (
        f'[[kommune]]\nnr = "{nr}"\nname = "Kommune {nr}"\n[kommune.ke]\n'
        f'name = "Koordinerende enhet {nr}"\nher_id = {99_000_000 + int(nr)}\n'
        f'orgnr = "{ke_orgnr(nr)}"\nadapter = "{adapter}"\n'
        f'[kommune.ke.settings]\nbase_url = "{base_url}"\n' + _plain(adapter)
    )


def trust(org: Organisation, adapter: str, base_url: str, *, active: bool = True) -> str:
    """A ``[[helseforetak]]`` entry for ``org`` on ``base_url``."""
    return (
        f'[[helseforetak]]\nname = "{org.name}"\nher_id = {org.her_id}\n'
        f'orgnr = "{org.orgnr}"\nadapter = "{adapter}"\nactive = {str(active).lower()}\n'
        f'[helseforetak.settings]\nbase_url = "{base_url}"\n' + _plain(adapter)
    )


def with_directory(settings: Settings, tmp_path: Path, entries: str) -> Settings:
    """``settings`` with a directory of ``entries``, the gateway's HER-id and quick AppRec
    polling."""
    directory = tmp_path / "directory.toml"
    directory.write_text(entries)
    return settings.model_copy(
        update={
            "directory_file": directory,
            "gateway_her_id": GATEWAY_HER,
            "ack_check_interval_seconds": 0.1,
        }
    )
