"""The population-register port: where a person lived on a day, when a notice does not say.

The real source is Folkeregisteret (through an adapter later); the file-backed register here
serves the demo, the tests and installations that export addresses to a file. The file is a
register extract and holds person ids: keep it where the gateway's data is kept.

File format (JSON)::

    {"source": "...", "persons": {"<fødselsnummer>": [
        {"kommune": "1506", "from": "2019-05-01"},
        {"kommune": "5001", "from": "2025-08-15"}]}}

Each person's moves in order; the kommune in force on a day is the last ``from`` on or before
it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.domain.identifiers import parse_kommune_nr


class PopulationRegister(Protocol):
    def bostedskommune(self, person_id: str, on: dt.date) -> str | None:
        """The kommune the person lived in on ``on``; None when the register does not know."""
        ...


class PopulationRegisterError(ValueError):
    """The register file cannot be read; the gateway will not start with it."""


@dataclass(frozen=True)
class FileRegister:
    addresses: dict[str, tuple[tuple[dt.date, str], ...]]

    def bostedskommune(self, person_id: str, on: dt.date) -> str | None:
        found = None
        for since, kommune in self.addresses.get(person_id, ()):
            if since <= on:
                found = kommune
        return found


def load_file_register(path: Path) -> FileRegister:
    try:
        data = json.loads(path.read_text("utf-8"))
        persons = data["persons"]
        addresses = {
            str(person): tuple(
                sorted(
                    (dt.date.fromisoformat(move["from"]), parse_kommune_nr(move["kommune"]))
                    for move in moves
                )
            )
            for person, moves in persons.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # the error names the file and the kind of fault, never an entry (a person id)
        raise PopulationRegisterError(
            f"population register {path} is unreadable ({type(e).__name__})"
        ) from None
    return FileRegister(addresses)
