"""Norwegian identifiers: person ids, kommune numbers, HER-ids, organisasjonsnumre, HPR-numre.

Person-id rules are written here rather than taken from python-stdnum because the gateway
needs rules stdnum does not have: the 2032 scheme (first control digit may leave a remainder
of 0-3), synthetic test numbers (month + 40 / + 80) accepted only when configured, the
felles hjelpenummer and the H-nummer. Error texts never contain the number itself: they end
up in receipts, logs and operator views.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2, 1)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1)
#: Brønnøysundregistrene's weights for the organisasjonsnummer, check digit weighted 1
_W_ORGNR = (3, 2, 7, 6, 5, 4, 3, 2, 1)


def _is_ascii_digits(text: str) -> bool:
    """``str.isdigit`` alone lets through Arabic-Indic, fullwidth and superscript digits."""
    return text.isascii() and text.isdigit()


class InvalidIdentifier(ValueError):
    """An identifier that fails its rules; the text never holds the value (it is logged)."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        #: AppRec error code (code list 8221) that names this failure to the sender.
        self.code = code


class PersonIdKind(StrEnum):
    """Which register the number belongs to; the values are the codes of code list 8116.

    FNR, DNR and FHN are national registers with their own FHIR identifier system. HNR is
    not: an H-nummer is unique only within the institution that issued it, so it means
    nothing to a receiver without the issuer beside it.
    """

    FNR = "FNR"  # fødselsnummer
    DNR = "DNR"  # D-nummer: first digit + 4
    FHN = "FHN"  # felles hjelpenummer: first digit 8 or 9
    HNR = "HNR"  # H-nummer, the institution's own help number: third digit + 4


@dataclass(frozen=True, slots=True)
class PersonId:
    """A checked 11-digit person id. ``str()`` gives the digits; ``repr()`` never does."""

    value: str
    kind: PersonIdKind
    synthetic: bool

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"PersonId(kind={self.kind.value}, synthetic={self.synthetic}, value=<masked>)"


def control_digits(first_nine: str) -> tuple[int, int] | None:
    """Control digits k1, k2 under the pre-2032 rule, or None when the number can't be issued."""
    digits = [int(c) for c in first_nine]
    k1 = (11 - sum(w * d for w, d in zip(_W1, digits, strict=False)) % 11) % 11
    if k1 == 10:
        return None
    k2 = (11 - sum(w * d for w, d in zip(_W2, [*digits, k1], strict=False)) % 11) % 11
    if k2 == 10:
        return None
    return k1, k2


def parse_person_id(raw: str, *, allow_synthetic: bool) -> PersonId:
    """Check an 11-digit fødselsnummer, D-nummer, H-nummer or felles hjelpenummer.

    Accepts both control-digit rules in force (remainder 0 before 2032, 0-3 after), the date
    only where the number carries one, and synthetic test numbers only when ``allow_synthetic``.

    Month + 40 is ambiguous: it is the H-nummer (KITH 11/98, HIS 1001) and also the month of
    NAV's synthetic test persons; nothing in the number tells them apart. Month + 80
    (Skatteetaten's Tenor) has one meaning only. So the configuration decides: in production
    no synthetic number may ever appear, so month + 40 is an H-nummer; where synthetic ids are
    allowed (test), the test registers are where numbers come from, so month + 40 is synthetic
    and an institution's H-nummer is not expected there. An H-nummer is built like a
    fødselsnummer; one on a D-nummer (day + 40 as well) is not described anywhere, so such a
    number is read as NAV's synthetic D-nummer and refused outside test.
    """
    value = raw.strip()
    if len(value) != 11 or not _is_ascii_digits(value):
        raise InvalidIdentifier("person id must be exactly 11 digits", "E31")
    digits = [int(c) for c in value]
    if sum(w * d for w, d in zip(_W1, digits[:10], strict=True)) % 11 > 3:
        raise InvalidIdentifier("person id has a wrong first control digit", "E31")
    if sum(w * d for w, d in zip(_W2, digits, strict=True)) % 11 != 0:
        raise InvalidIdentifier("person id has a wrong second control digit", "E31")

    first = digits[0]
    if first >= 8:
        return PersonId(value, PersonIdKind.FHN, synthetic=False)
    d_nummer = first >= 4
    kind = PersonIdKind.DNR if d_nummer else PersonIdKind.FNR
    day = int(value[0:2]) - (40 if d_nummer else 0)
    month = int(value[2:4])
    synthetic = False
    if 81 <= month <= 92:
        if not allow_synthetic:
            raise InvalidIdentifier("synthetic test person ids are not accepted here", "E31")
        synthetic = True
        month -= 80
    elif 41 <= month <= 52:
        if allow_synthetic:
            synthetic = True
        elif d_nummer:
            raise InvalidIdentifier("synthetic test person ids are not accepted here", "E31")
        else:
            kind = PersonIdKind.HNR
        month -= 40
    # The century would need the individual digits (and they change meaning with the 2032
    # scheme); a leap year is possible exactly when the two-digit year is divisible by 4.
    year = 2000 if int(value[4:6]) % 4 == 0 else 2001
    try:
        dt.date(year, month, day)
    except ValueError:
        raise InvalidIdentifier("person id does not hold a valid date", "E31") from None
    return PersonId(value, kind, synthetic)


_KOMMUNE_NR = re.compile(r"^[0-9]{4}$")


def parse_kommune_nr(raw: str) -> str:
    """A 4-digit kommunenummer (code list 3402); whether it exists is the directory's call."""
    value = raw.strip()
    if not _KOMMUNE_NR.match(value) or value[:2] == "00":
        raise InvalidIdentifier("kommunenummer must be 4 digits with a county prefix", "E21")
    return value


def parse_her_id(raw: str | int) -> int:
    """HER-ids are positive integers in Adresseregisteret; 9 digits at most today."""
    text = str(raw).strip()
    if not _is_ascii_digits(text) or not 0 < int(text) < 10**9:
        raise InvalidIdentifier("HER-id must be a positive integer", "E21")
    return int(text)


def parse_orgnr(raw: str) -> str:
    """An organisasjonsnummer from Enhetsregisteret: 9 digits, the last a mod-11 check digit.

    Brønnøysundregistrene: weights 3,2,7,6,5,4,3,2; check digit = 11 - (sum mod 11), where
    remainder 0 gives 0 and remainder 1 gives no number at all. Whether the unit exists is
    the register's call, not ours. E20 because the organisation number names the sender
    party (the trust and its units) the gateway answers to; a wrong one leaves it unknown.
    """
    value = raw.strip()
    if len(value) != 9 or not _is_ascii_digits(value):
        raise InvalidIdentifier("organisasjonsnummer must be exactly 9 digits", "E20")
    # With the check digit weighted 1, a valid number sums to 0 mod 11 (11 - r == -r).
    if sum(w * int(c) for w, c in zip(_W_ORGNR, value, strict=True)) % 11 != 0:
        raise InvalidIdentifier("organisasjonsnummer has a wrong check digit", "E20")
    return value


def parse_hpr_nr(raw: str | int) -> int:
    """An HPR-nummer (Helsepersonellregisteret): a positive number of at most 9 digits.

    No check digit and no fixed length are published, so none is checked: a typo can only be
    caught by a look-up in HPR. Numbers in use have 7-9 digits and systems that zero-pad them
    pad to 9 (NAV), so 9 is the bound and leading zeros are read, not refused. No lower bound
    is set: none is documented, and a wrong one would refuse a real health professional.
    """
    # str() of an int beyond 4300 digits raises a bare ValueError: bound ints before it.
    text = str(raw).strip() if not isinstance(raw, int) or 0 < raw < 10**9 else ""
    if not _is_ascii_digits(text) or len(text) > 9 or int(text) == 0:
        raise InvalidIdentifier("HPR-nummer must be a positive number of at most 9 digits", "E20")
    return int(text)


def birth_date(person: PersonId) -> dt.date | None:
    """The birth date a fødselsnummer or D-nummer carries, None where it cannot be told.

    The century comes from the individual number (Skatteetaten's ranges): 000-499 → 1900s;
    500-749 with year 54-99 → 1800s; 500-999 with year 00-39 → 2000s; 900-999 with year
    40-99 → 1900s. Felles hjelpenummer carry no date; a number outside the ranges (or one of
    the 2032 scheme, where the ranges no longer hold) gives None rather than a guess.
    """
    if person.kind is PersonIdKind.FHN:
        return None
    value = person.value
    day = int(value[0:2]) - (40 if int(value[0]) >= 4 else 0)
    month = int(value[2:4]) % 40 if int(value[2:4]) > 12 else int(value[2:4])
    year, individual = int(value[4:6]), int(value[6:9])
    if individual <= 499:
        century = 1900
    elif individual <= 749 and year >= 54:
        century = 1800
    elif individual >= 500 and year <= 39:
        century = 2000
    elif individual >= 900 and year >= 40:
        century = 1900
    else:
        return None
    try:
        return dt.date(century + year, month, day)
    except ValueError:
        return None
