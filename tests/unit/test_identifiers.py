"""Person ids, kommune numbers, HER-ids, orgnr and HPR-nr (gateway/domain/identifiers.py).

The expected results are computed here with an independent, deliberately plain implementation
of the rule in ../shared/standards/README.md ("Person ids"), never copied from the code under
test:

    k1 = 11 - (d1..d9 . [3,7,6,1,8,9,4,5,2]) mod 11
    k2 = 11 - (d1..d9,k1 . [5,4,3,2,7,6,5,4,3,2]) mod 11      (11 -> 0, 10 is never issued)

From 2032 the first control digit may leave any remainder 0-3 of the weighted sum
d1..d9,k1 . [3,7,6,1,8,9,4,5,2,1]; k2 is unchanged.

H-nummer (KITH-rapport 11/98, HIS 1001:2010): a fødselsnummer with month + 40 (41-52), all
other rules kept. NAV's synthetic test persons use the same month + 40; the gateway reads it as
an H-nummer in production and as synthetic where synthetic ids are allowed.

Organisasjonsnummer (Brønnøysundregistrene): 9 digits, the last 11 - (d1..d8 . [3,2,7,6,5,4,3,2])
mod 11, remainder 0 -> 0, remainder 1 -> not issued (tests/strategies.py, with_orgnr_check_digit).
HPR-nummer: no check digit or length is published; 7-9 digits in use, zero-padded to 9 by some.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from gateway.domain.identifiers import (
    InvalidIdentifier,
    PersonId,
    PersonIdKind,
    control_digits,
    parse_her_id,
    parse_hpr_nr,
    parse_kommune_nr,
    parse_orgnr,
    parse_person_id,
)
from tests.strategies import ORGNR_WEIGHTS, VALID_ORGNRS, with_orgnr_check_digit

# --- an independent reference implementation of the standard's rule -----------------------

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def ref_control_digit(digits: list[int], weights: tuple[int, ...]) -> int | None:
    """11 - (weighted sum mod 11); 11 becomes 0; 10 means "never issued" (None)."""
    total = 0
    for w, d in zip(weights, digits, strict=True):
        total += w * d
    k = 11 - total % 11
    if k == 11:
        return 0
    if k == 10:
        return None
    return k


def ref_control_digits(first_nine: str) -> tuple[int, int] | None:
    digits = [int(c) for c in first_nine]
    k1 = ref_control_digit(digits, K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = ref_control_digit([*digits, k1], K2_WEIGHTS)
    if k2 is None:
        return None
    return k1, k2


def ref_k1_remainder(ten: str) -> int:
    """The remainder the 2032 rule looks at: d1..d9,k1 weighted 3,7,6,1,8,9,4,5,2,1."""
    return sum(w * int(c) for w, c in zip((*K1_WEIGHTS, 1), ten, strict=True)) % 11


def ref_id_with_remainder(first_nine: str, remainder: int) -> str | None:
    """The id whose k1 leaves ``remainder`` (0 = pre-2032 rule), or None if none is issuable."""
    digits = [int(c) for c in first_nine]
    s1 = sum(w * d for w, d in zip(K1_WEIGHTS, digits, strict=True))
    k1 = (remainder - s1) % 11
    if k1 == 10:
        return None
    k2 = ref_control_digit([*digits, k1], K2_WEIGHTS)
    if k2 is None:
        return None
    return f"{first_nine}{k1}{k2}"


def prefix(day: int, month: int, year: int, individual: int) -> str:
    return f"{day:02d}{month:02d}{year % 100:02d}{individual:03d}"


# --- strategies -----------------------------------------------------------------------------

# Born 1854-2039 (the range the individual-number scheme covers, plus the 2032 numbers).
birth_dates = st.dates(min_value=dt.date(1854, 1, 1), max_value=dt.date(2039, 12, 31))
individuals = st.integers(min_value=0, max_value=999)
nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)
eleven_digits = st.text(alphabet="0123456789", min_size=11, max_size=11)


@st.composite
def valid_ids(draw: st.DrawFn) -> tuple[str, PersonIdKind, bool]:
    """Any id the gateway must accept with allow_synthetic=True: (id, kind, synthetic).

    No HNR here: with synthetic ids allowed, month + 40 reads as synthetic (see hnr_ids).
    """
    kind = draw(st.sampled_from([PersonIdKind.FNR, PersonIdKind.DNR, PersonIdKind.FHN]))
    synthetic = False
    if kind is PersonIdKind.FHN:
        first_nine = draw(st.sampled_from("89")) + draw(
            st.text(alphabet="0123456789", min_size=8, max_size=8)
        )
    else:
        born = draw(birth_dates)
        day = born.day + (40 if kind is PersonIdKind.DNR else 0)
        offset = draw(st.sampled_from([0, 40, 80]))
        synthetic = offset > 0
        first_nine = prefix(day, born.month + offset, born.year, draw(individuals))
    remainder = draw(st.integers(min_value=0, max_value=3))
    value = ref_id_with_remainder(first_nine, remainder)
    assume(value is not None)
    assert value is not None
    return value, kind, synthetic


@st.composite
def hnr_ids(draw: st.DrawFn) -> str:
    """An H-nummer: a fødselsnummer of a real date with month + 40, either k1 rule."""
    born = draw(birth_dates)
    first_nine = prefix(born.day, born.month + 40, born.year, draw(individuals))
    value = ref_id_with_remainder(first_nine, draw(st.integers(min_value=0, max_value=3)))
    assume(value is not None)
    assert value is not None
    return value


# --- known-valid examples computed by hand ---------------------------------------------------

# 15.03.87, individual number 124 -> d = 1 5 0 3 8 7 1 2 4
#   k1: 3*1 + 7*5 + 6*0 + 1*3 + 8*8 + 9*7 + 4*1 + 5*2 + 2*4 = 190; 190 mod 11 = 3; k1 = 8
#   k2: 5*1 + 4*5 + 3*0 + 2*3 + 7*8 + 6*7 + 5*1 + 4*2 + 3*4 + 2*8 = 170; 170 mod 11 = 5; k2 = 6
FNR_EXAMPLE = "15038712486"
# The same person's D-nummer: first digit + 4 -> d = 5 5 0 3 8 7 1 2 4
#   k1: 190 + 3*4 = 202; 202 mod 11 = 4; k1 = 7
#   k2: 170 + 5*4 - 2*8 + 2*7 = 188; 188 mod 11 = 1; k2 = 10 -> never issued. Individual 125:
#   k1: 202 + 2*1 = 204; 204 mod 11 = 6; k1 = 5
#   k2: 5*5 + 20 + 0 + 6 + 56 + 42 + 5 + 8 + 3*5 + 2*5 = 187; 187 mod 11 = 0; k2 = 11 -> 0
DNR_EXAMPLE = "55038712550"
# A felles hjelpenummer (first digit 8 or 9, no date): d = 8 1 2 3 4 5 6 7 8
#   k1: 24 + 7 + 12 + 3 + 32 + 45 + 24 + 35 + 16 = 198; 198 mod 11 = 0; k1 = 11 -> 0
#   k2: 40 + 4 + 6 + 6 + 28 + 30 + 30 + 28 + 24 + 2*0 = 196; 196 mod 11 = 9; k2 = 2
FHN_EXAMPLE = "81234567802"
# A synthetic (Tenor-style) id: 15.03.87 with month + 80 -> d = 1 5 8 3 8 7 1 2 4
#   k1: 190 + 6*8 = 238; 238 mod 11 = 7; k1 = 4
#   k2: 170 + 3*8 - 2*8 + 2*4 = 186; 186 mod 11 = 10; k2 = 1
SYNTHETIC_EXAMPLE = "15838712441"
# A 2032-rule id: FNR_EXAMPLE's prefix with k1 = 9 (remainder (190 + 9) mod 11 = 1, not 0)
#   k2: 5*1 + 20 + 0 + 6 + 56 + 42 + 5 + 8 + 12 + 2*9 = 172; 172 mod 11 = 7; k2 = 4
RULE_2032_EXAMPLE = "15038712494"
# An H-nummer for 15.03.87: month + 40 -> d = 1 5 4 3 8 7 1 2 4
#   k1: 190 + 6*4 = 214; 214 mod 11 = 5; k1 = 6
#   k2: 5*1 + 4*5 + 3*4 + 2*3 + 7*8 + 6*7 + 5*1 + 4*2 + 3*4 + 2*6 = 178; 178 mod 11 = 2; k2 = 9
HNR_EXAMPLE = "15438712469"


@pytest.mark.parametrize(
    ("value", "kind", "synthetic"),
    [
        (FNR_EXAMPLE, PersonIdKind.FNR, False),
        (DNR_EXAMPLE, PersonIdKind.DNR, False),
        (FHN_EXAMPLE, PersonIdKind.FHN, False),
        (SYNTHETIC_EXAMPLE, PersonIdKind.FNR, True),
        (RULE_2032_EXAMPLE, PersonIdKind.FNR, False),
    ],
)
def test_hand_computed_examples_are_accepted(
    value: str, kind: PersonIdKind, synthetic: bool
) -> None:
    pid = parse_person_id(value, allow_synthetic=True)
    assert pid.kind is kind
    assert pid.synthetic is synthetic
    assert str(pid) == value


@pytest.mark.parametrize(
    "value",
    [FNR_EXAMPLE, DNR_EXAMPLE, FHN_EXAMPLE, SYNTHETIC_EXAMPLE, RULE_2032_EXAMPLE, HNR_EXAMPLE],
)
def test_reference_implementation_agrees_with_hand_computation(value: str) -> None:
    """Guards the test's own oracle: it must reproduce the worked examples above."""
    if value == RULE_2032_EXAMPLE:
        assert ref_id_with_remainder(value[:9], 1) == value
    else:
        assert ref_control_digits(value[:9]) == (int(value[9]), int(value[10]))


def test_control_digits_of_hand_computed_examples() -> None:
    assert control_digits("150387124") == (8, 6)
    assert control_digits("550387125") == (5, 0)
    assert control_digits("812345678") == (0, 2)
    assert control_digits("158387124") == (4, 1)
    assert control_digits("154387124") == (6, 9)


def test_control_digits_none_when_a_digit_would_be_ten() -> None:
    # 150387123: k1 sum 188, 188 mod 11 = 1 -> k1 = 10, never issued
    assert control_digits("150387123") is None
    # 550387124: k1 = 7 but k2 sum 188 -> k2 = 10, never issued
    assert control_digits("550387124") is None


# --- property tests --------------------------------------------------------------------------


@given(nine_digits)
def test_control_digits_matches_the_standard(first_nine: str) -> None:
    assert control_digits(first_nine) == ref_control_digits(first_nine)


@given(birth_dates, individuals, st.booleans())
def test_every_issuable_prefix_with_a_valid_date_is_accepted(
    born: dt.date, individual: int, d_nummer: bool
) -> None:
    day = born.day + (40 if d_nummer else 0)
    first_nine = prefix(day, born.month, born.year, individual)
    digits = control_digits(first_nine)
    assert digits == ref_control_digits(first_nine)
    assume(digits is not None)
    assert digits is not None
    value = f"{first_nine}{digits[0]}{digits[1]}"
    pid = parse_person_id(value, allow_synthetic=False)
    assert str(pid) == value
    assert pid.kind is (PersonIdKind.DNR if d_nummer else PersonIdKind.FNR)
    assert pid.synthetic is False


@given(valid_ids())
def test_generated_valid_ids_are_accepted(case: tuple[str, PersonIdKind, bool]) -> None:
    value, kind, synthetic = case
    pid = parse_person_id(value, allow_synthetic=True)
    assert (pid.kind, pid.synthetic, str(pid)) == (kind, synthetic, value)


@given(valid_ids(), st.integers(min_value=0, max_value=10), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_makes_an_id_invalid(
    case: tuple[str, PersonIdKind, bool], position: int, delta: int
) -> None:
    value = case[0]
    changed = f"{value[:position]}{(int(value[position]) + delta) % 10}{value[position + 1 :]}"
    assert changed != value
    # The claim itself, checked on the reference rule: k2 weighs every digit by 1..7, which
    # is never 0 mod 11, so no single-digit change keeps the k2 sum at 0 mod 11.
    k2_sum = sum(w * int(c) for w, c in zip((*K2_WEIGHTS, 1), changed, strict=True))
    assert k2_sum % 11 != 0
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(changed, allow_synthetic=True)
    assert info.value.code == "E31"


@given(birth_dates, individuals, st.integers(min_value=0, max_value=3))
def test_2032_rule_any_k1_remainder_0_to_3_is_accepted(
    born: dt.date, individual: int, remainder: int
) -> None:
    value = ref_id_with_remainder(prefix(born.day, born.month, born.year, individual), remainder)
    assume(value is not None)
    assert value is not None
    assert ref_k1_remainder(value[:10]) == remainder
    pid = parse_person_id(value, allow_synthetic=False)
    assert str(pid) == value
    assert pid.kind is PersonIdKind.FNR


@given(birth_dates, individuals, st.integers(min_value=4, max_value=10))
def test_k1_remainder_above_3_is_refused_even_with_a_matching_k2(
    born: dt.date, individual: int, remainder: int
) -> None:
    value = ref_id_with_remainder(prefix(born.day, born.month, born.year, individual), remainder)
    assume(value is not None)
    assert value is not None
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(value, allow_synthetic=True)
    assert info.value.code == "E31"


@given(birth_dates, individuals)
def test_d_nummer_first_digit_plus_4_is_dnr(born: dt.date, individual: int) -> None:
    value = ref_id_with_remainder(prefix(born.day + 40, born.month, born.year, individual), 0)
    assume(value is not None)
    assert value is not None
    assert value[0] in "4567"
    assert parse_person_id(value, allow_synthetic=False).kind is PersonIdKind.DNR


@given(st.sampled_from("89"), st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_felles_hjelpenummer_first_digit_8_or_9_is_fhn(first: str, rest: str) -> None:
    # No date is carried: any digits after the first are allowed, e.g. "month" 99.
    value = ref_id_with_remainder(first + rest, 0)
    assume(value is not None)
    assert value is not None
    pid = parse_person_id(value, allow_synthetic=False)
    assert pid.kind is PersonIdKind.FHN
    assert pid.synthetic is False


@given(birth_dates, individuals, st.sampled_from([(80, False), (80, True), (40, True)]))
def test_synthetic_ids_only_when_allowed(
    born: dt.date, individual: int, offset_and_d_nummer: tuple[int, bool]
) -> None:
    """Month + 80, and month + 40 on a D-nummer; month + 40 alone is an H-nummer (below)."""
    offset, d_nummer = offset_and_d_nummer
    day = born.day + (40 if d_nummer else 0)
    value = ref_id_with_remainder(prefix(day, born.month + offset, born.year, individual), 0)
    assume(value is not None)
    assert value is not None
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(value, allow_synthetic=False)
    assert info.value.code == "E31"
    pid = parse_person_id(value, allow_synthetic=True)
    assert pid.synthetic is True
    assert pid.kind is (PersonIdKind.DNR if d_nummer else PersonIdKind.FNR)


def test_hand_computed_synthetic_example_refused_without_allow_synthetic() -> None:
    with pytest.raises(InvalidIdentifier):
        parse_person_id(SYNTHETIC_EXAMPLE, allow_synthetic=False)


# --- H-nummer: month + 40 --------------------------------------------------------------------


def test_hand_computed_h_nummer_is_hnr_in_production() -> None:
    pid = parse_person_id(HNR_EXAMPLE, allow_synthetic=False)
    assert (pid.kind, pid.synthetic, str(pid)) == (PersonIdKind.HNR, False, HNR_EXAMPLE)


def test_hand_computed_h_nummer_is_synthetic_where_synthetic_ids_are_allowed() -> None:
    """NAV's test persons use month + 40 too; in test the number cannot be told apart."""
    pid = parse_person_id(HNR_EXAMPLE, allow_synthetic=True)
    assert (pid.kind, pid.synthetic) == (PersonIdKind.FNR, True)


@given(hnr_ids())
def test_month_plus_40_is_an_h_nummer_in_production(value: str) -> None:
    assert 41 <= int(value[2:4]) <= 52
    pid = parse_person_id(value, allow_synthetic=False)
    assert (pid.kind, pid.synthetic, str(pid)) == (PersonIdKind.HNR, False, value)
    assert PersonIdKind.HNR.value in repr(pid)
    assert value not in repr(pid)


@given(hnr_ids())
def test_month_plus_40_is_synthetic_when_synthetic_ids_are_allowed(value: str) -> None:
    pid = parse_person_id(value, allow_synthetic=True)
    assert (pid.kind, pid.synthetic, str(pid)) == (PersonIdKind.FNR, True, value)


@given(hnr_ids(), st.integers(min_value=0, max_value=10), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_makes_an_h_nummer_invalid(
    value: str, position: int, delta: int
) -> None:
    changed = f"{value[:position]}{(int(value[position]) + delta) % 10}{value[position + 1 :]}"
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(changed, allow_synthetic=False)
    assert info.value.code == "E31"
    assert_message_hides(changed, str(info.value))


@pytest.mark.parametrize(("day", "month"), [(31, 44), (30, 42), (29, 42), (0, 41), (32, 41)])
def test_h_nummer_needs_a_real_date(day: int, month: int) -> None:
    """31 April, 30 February, 29 February in 1987, day 0 and day 32 under month + 40."""
    value = next(
        v
        for i in range(1000)
        if (v := ref_id_with_remainder(prefix(day, month, 1987, i), 0)) is not None
    )
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(value, allow_synthetic=False)
    assert info.value.code == "E31"


@given(birth_dates, individuals)
def test_h_nummer_on_a_d_nummer_is_refused_in_production(born: dt.date, individual: int) -> None:
    """Day + 40 and month + 40 is NAV's synthetic D-nummer; no H-nummer is built that way."""
    value = ref_id_with_remainder(prefix(born.day + 40, born.month + 40, born.year, individual), 0)
    assume(value is not None)
    assert value is not None
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(value, allow_synthetic=False)
    assert info.value.code == "E31"


@pytest.mark.parametrize(
    ("day", "month"),
    [(0, 1), (32, 1), (30, 2), (31, 4), (31, 6), (31, 9), (31, 11), (1, 0), (1, 13)],
)
@pytest.mark.parametrize("allow_synthetic", [False, True])
def test_impossible_dates_are_refused(day: int, month: int, allow_synthetic: bool) -> None:
    for individual in range(1000):  # the first issuable individual number
        value = ref_id_with_remainder(prefix(day, month, 1987, individual), 0)
        if value is not None:
            break
    assert value is not None
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(value, allow_synthetic=allow_synthetic)
    assert info.value.code == "E31"


@pytest.mark.parametrize("month", [13, 25, 40, 53, 60, 79, 80, 93, 99])
@pytest.mark.parametrize("allow_synthetic", [False, True])
def test_month_outside_real_and_synthetic_ranges_is_refused(
    month: int, allow_synthetic: bool
) -> None:
    value = next(
        v
        for i in range(1000)
        if (v := ref_id_with_remainder(prefix(15, month, 1987, i), 0)) is not None
    )
    with pytest.raises(InvalidIdentifier):
        parse_person_id(value, allow_synthetic=allow_synthetic)


@pytest.mark.parametrize("month", [13, 60, 99])
def test_month_that_is_no_synthetic_month_is_not_reported_as_synthetic(month: int) -> None:
    """Month 13-40, 53-80, 93-99 is a typo, not a test number; the reason goes to the sender."""
    value = next(
        v
        for i in range(1000)
        if (v := ref_id_with_remainder(prefix(15, month, 1987, i), 0)) is not None
    )
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(value, allow_synthetic=False)
    assert "synthetic" not in info.value.reason


@pytest.mark.parametrize("year", [1901, 2023])
def test_29_february_refused_in_a_year_no_century_makes_leap(year: int) -> None:
    """yy mod 4 != 0 is not a leap year in 18xx, 19xx or 20xx: 29.02.yy cannot be a birth date."""
    value = next(
        v
        for i in range(1000)
        if (v := ref_id_with_remainder(prefix(29, 2, year, i), 0)) is not None
    )
    with pytest.raises(InvalidIdentifier):
        parse_person_id(value, allow_synthetic=False)


@pytest.mark.parametrize("year", [1904, 1988, 2000, 2024])
def test_29_february_accepted_in_a_possible_leap_year(year: int) -> None:
    value = next(
        v
        for i in range(1000)
        if (v := ref_id_with_remainder(prefix(29, 2, year, i), 0)) is not None
    )
    assert str(parse_person_id(value, allow_synthetic=False)) == value


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1503871248",  # 10 digits
        "150387124860",  # 12 digits
        "1503871248a",
        "150387 12486",
        "15.03.87-124",
        "+5038712486",
        "-5038712486",
    ],
)
def test_not_eleven_digits_is_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(raw, allow_synthetic=True)
    assert info.value.code == "E31"


@pytest.mark.parametrize(
    "raw",
    [
        FNR_EXAMPLE.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),  # Arabic-Indic
        FNR_EXAMPLE.translate(str.maketrans("0123456789", "０１２３４５６７８９")),  # fullwidth
        FNR_EXAMPLE[:10] + "²",  # superscript two: str.isdigit() but not a decimal digit
    ],
)
def test_only_ascii_digits_make_a_person_id(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(raw, allow_synthetic=True)
    assert info.value.code == "E31"


# --- privacy: error texts and repr never hold the number -------------------------------------

LONG_DIGIT_RUN = re.compile(r"\d{5,}")


def assert_message_hides(value: str, message: str) -> None:
    assert value not in message
    assert value.strip() not in message
    assert not LONG_DIGIT_RUN.search(message), message


@given(eleven_digits, st.booleans())
@example(SYNTHETIC_EXAMPLE, False)
@example(FNR_EXAMPLE[:10] + "7", False)
@example("15138712486", True)
def test_error_messages_never_contain_the_number(raw: str, allow_synthetic: bool) -> None:
    try:
        parse_person_id(raw, allow_synthetic=allow_synthetic)
    except InvalidIdentifier as e:
        error = e
    else:
        return
    assert_message_hides(raw, str(error))
    assert_message_hides(raw, error.reason)
    assert_message_hides(raw, repr(error))
    assert error.code == "E31"


@given(valid_ids(), st.integers(min_value=0, max_value=10), st.integers(min_value=1, max_value=9))
def test_error_messages_for_near_miss_ids_never_contain_the_number(
    case: tuple[str, PersonIdKind, bool], position: int, delta: int
) -> None:
    value = case[0]
    changed = f"{value[:position]}{(int(value[position]) + delta) % 10}{value[position + 1 :]}"
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(changed, allow_synthetic=False)
    assert_message_hides(changed, str(info.value))


@pytest.mark.parametrize("raw", ["1503871248", "150387124860", "  1503871248x  "])
def test_length_error_message_never_contains_the_input(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_person_id(raw, allow_synthetic=True)
    assert_message_hides(raw, str(info.value))


@given(valid_ids())
def test_repr_never_contains_the_digits(case: tuple[str, PersonIdKind, bool]) -> None:
    value, kind, _ = case
    pid = parse_person_id(value, allow_synthetic=True)
    for text in (repr(pid), f"{pid!r}", repr([pid]), repr({"patient": pid})):
        assert value not in text
        assert not LONG_DIGIT_RUN.search(text), text
    assert kind.value in repr(pid)
    assert str(pid) == value


def test_person_id_is_immutable() -> None:
    pid = parse_person_id(FNR_EXAMPLE, allow_synthetic=False)
    with pytest.raises(AttributeError):
        pid.value = DNR_EXAMPLE  # type: ignore[misc]
    assert pid == PersonId(FNR_EXAMPLE, PersonIdKind.FNR, synthetic=False)


# --- kommune numbers and HER-ids -------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1506", "0301", "5001", "1112", " 1506 ", "9999"])
def test_kommune_nr_accepts_four_digits(raw: str) -> None:
    assert parse_kommune_nr(raw) == raw.strip()


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "150",
        "15060",
        "15a6",
        "0000",
        "0099",  # no county 00
        "-150",
        "15 06",
        "1506\n1507",
        "١٥٠٦",  # Arabic-Indic digits
        "１５０６",  # fullwidth digits
    ],
)
def test_kommune_nr_refuses_everything_else(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_kommune_nr(raw)
    assert info.value.code == "E21"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, 1),
        ("99001506", 99001506),
        (99001506, 99001506),
        (" 42 ", 42),
        (999_999_999, 999_999_999),
    ],
)
def test_her_id_accepts_positive_integers_up_to_nine_digits(raw: str | int, expected: int) -> None:
    assert parse_her_id(raw) == expected


@pytest.mark.parametrize(
    "raw", [0, -1, "0", "-5", "", "abc", "12.5", 10**9, "1000000000", "4 2", "١٥٠٦", "²"]
)
def test_her_id_refuses_everything_else(raw: str | int) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_her_id(raw)
    assert info.value.code == "E21"


# --- organisasjonsnumre ------------------------------------------------------------------------

# Brønnøysundregistrene's worked example: 1 2 3 4 5 6 7 8 . 3 2 7 6 5 4 3 2
#   3 + 4 + 21 + 24 + 25 + 24 + 21 + 16 = 138; 138 mod 11 = 6; check digit 11 - 6 = 5
BRREG_EXAMPLE = "123456785"
# Public numbers of health trusts, by hand:
#   Helse Møre og Romsdal HF 99700556: 27 + 18 + 49 + 0 + 0 + 20 + 15 + 12 = 141; mod 11 = 9 -> 2
#   Helse Nord-Trøndelag HF 98397479: 27 + 16 + 21 + 54 + 35 + 16 + 21 + 18 = 208; mod 11 = 10 -> 1
#   St. Olavs hospital HF 88397483: 24 + 16 + 21 + 54 + 35 + 16 + 24 + 6 = 196; mod 11 = 9 -> 2
HEALTH_TRUST_ORGNRS = ["997005562", "983974791", "883974832"]
# Remainder 0 gives check digit 0: 99700557 -> 27 + 18 + 49 + 0 + 0 + 20 + 15 + 14 = 143 = 13 * 11
REMAINDER_0_ORGNR = "997005570"
# Remainder 1 gives no number: 99700566 -> 27 + 18 + 49 + 0 + 0 + 20 + 18 + 12 = 144 = 13 * 11 + 1
REMAINDER_1_PREFIX = "99700566"


@pytest.mark.parametrize("orgnr", [BRREG_EXAMPLE, *HEALTH_TRUST_ORGNRS, REMAINDER_0_ORGNR])
def test_hand_computed_orgnrs_are_accepted(orgnr: str) -> None:
    assert with_orgnr_check_digit(orgnr[:8]) == orgnr  # the test's oracle agrees by hand
    assert parse_orgnr(orgnr) == orgnr
    assert parse_orgnr(f" {orgnr}\n") == orgnr


def test_orgnr_remainder_1_has_no_check_digit() -> None:
    assert with_orgnr_check_digit(REMAINDER_1_PREFIX) is None
    for check in "0123456789":
        with pytest.raises(InvalidIdentifier) as info:
            parse_orgnr(REMAINDER_1_PREFIX + check)
        assert info.value.code == "E20"


@given(VALID_ORGNRS)
def test_valid_orgnrs_are_accepted(orgnr: str) -> None:
    assert parse_orgnr(orgnr) == orgnr


@given(st.text("0123456789", min_size=9, max_size=9))
def test_orgnr_accepted_exactly_when_the_check_digit_matches(candidate: str) -> None:
    if with_orgnr_check_digit(candidate[:8]) == candidate:
        assert parse_orgnr(candidate) == candidate
        return
    with pytest.raises(InvalidIdentifier) as info:
        parse_orgnr(candidate)
    assert info.value.code == "E20"
    assert_message_hides(candidate, str(info.value))


@given(VALID_ORGNRS, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_makes_an_orgnr_invalid(
    orgnr: str, position: int, delta: int
) -> None:
    changed = f"{orgnr[:position]}{(int(orgnr[position]) + delta) % 10}{orgnr[position + 1 :]}"
    # The claim, on the rule itself: every digit weighs 1-7 (check digit 1), never 0 mod 11.
    weighted = sum(w * int(c) for w, c in zip((*ORGNR_WEIGHTS, 1), changed, strict=True))
    assert weighted % 11 != 0
    with pytest.raises(InvalidIdentifier) as info:
        parse_orgnr(changed)
    assert info.value.code == "E20"
    assert_message_hides(changed, str(info.value))
    assert_message_hides(changed, repr(info.value))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "99700556",  # 8 digits
        "9970055620",  # 10 digits
        "997 005 562",
        "99700556a",
        "NO997005562MVA",
        "-99700556",
        "٩٩٧٠٠٥٥٦٢",  # Arabic-Indic digits
        "９９７００５５６２",  # fullwidth digits
        "99700556²",
    ],
)
def test_orgnr_refuses_everything_but_nine_ascii_digits(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_orgnr(raw)
    assert info.value.code == "E20"
    if raw.strip():
        assert_message_hides(raw, str(info.value))


# --- HPR-numre ---------------------------------------------------------------------------------

#: 9144900: NHN's tillitsrammeverk example; 181000001: HelseID's claim example; zero-padded to 9
HPR_EXAMPLES = [("9144900", 9144900), (9144900, 9144900), ("181000001", 181000001)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [*HPR_EXAMPLES, ("009144900", 9144900), (" 12345678 ", 12345678), (999_999_999, 999_999_999)],
)
def test_hpr_nr_accepts_positive_numbers_of_at_most_nine_digits(
    raw: str | int, expected: int
) -> None:
    assert parse_hpr_nr(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        0,
        -1,
        "0",
        "000000000",
        "-5",
        "",
        "abc",
        "12.5",
        "1e6",
        10**9,
        pytest.param(10**5000, id="10**5000"),  # str() of it raises a bare ValueError
        "1000000000",
        "0009144900",  # padded beyond 9
        "914 4900",
        "٩١٤٤٩٠٠",
        "²",
    ],
)
def test_hpr_nr_refuses_everything_else(raw: str | int) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_hpr_nr(raw)
    assert info.value.code == "E20"


@given(st.integers(min_value=1, max_value=10**9 - 1), st.booleans())
def test_every_positive_nine_digit_number_is_an_hpr_nr(number: int, as_text: bool) -> None:
    assert parse_hpr_nr(str(number) if as_text else number) == number
    assert parse_hpr_nr(f"{number:09d}") == number


@given(st.integers(min_value=1_000_000, max_value=10**9 - 1), st.data())
def test_hpr_nr_has_no_check_digit_so_a_changed_digit_still_passes(
    number: int, data: st.DataObject
) -> None:
    """No check digit is published: a typo in an HPR-nummer passes; only HPR can catch it."""
    text = str(number)
    position = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    changed = f"{text[:position]}{(int(text[position]) + 1) % 10}{text[position + 1 :]}"
    assert parse_hpr_nr(changed) == int(changed) != number


@given(st.one_of(st.integers(), st.text(max_size=12), st.text("0123456789", max_size=12)))
def test_hpr_and_her_id_errors_never_contain_the_value(raw: str | int) -> None:
    for parse in (parse_hpr_nr, parse_her_id):
        try:
            parse(raw)
        except InvalidIdentifier as e:
            text = str(raw).strip()
            for message in (str(e), e.reason, repr(e)):
                # a short input ("l", "9") may occur in any sentence; a value would be longer
                if len(text) >= 5:
                    assert text not in message
                assert not LONG_DIGIT_RUN.search(message), message


@given(st.integers(min_value=1, max_value=10**9 - 1), st.data())
def test_her_id_has_no_check_digit_so_a_changed_digit_still_passes(
    her_id: int, data: st.DataObject
) -> None:
    """HER-ids are plain integers from Adresseregisteret: only a look-up there catches a typo."""
    text = str(her_id)
    position = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    digit = (int(text[position]) + data.draw(st.integers(min_value=1, max_value=9))) % 10
    changed = f"{text[:position]}{digit}{text[position + 1 :]}"
    assume(int(changed) > 0)
    assert parse_her_id(changed) == int(changed)
