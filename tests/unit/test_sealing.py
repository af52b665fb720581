"""gateway/sealing.py: sealed values open only as sealed, with the right key and context, and
key configuration fails with a clear reason that never repeats a key."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sealing import (
    MAGIC,
    KeyConfigError,
    KeyRing,
    SealBroken,
    generated_keyring,
    keyring_from,
    new_key_line,
    parse_key_lines,
    parse_key_toml,
    read_key_file,
)

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
RING = KeyRing({"k1": K1}, "k1")
CTX = b"messages.raw"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@given(st.binary(max_size=4096), st.binary(max_size=40))
def test_what_is_sealed_opens_as_it_was(plaintext: bytes, context: bytes) -> None:
    sealed = RING.seal(plaintext, context=context)
    assert RING.open(sealed, context=context) == plaintext
    assert RING.key_id_of(sealed) == "k1"
    assert RING.is_current(sealed)


@given(st.binary(min_size=8, max_size=512))
def test_the_plaintext_is_not_in_the_sealed_value(plaintext: bytes) -> None:
    assert plaintext not in RING.seal(plaintext, context=CTX)


def test_sealing_twice_gives_different_values() -> None:
    """A fresh nonce each time: equal contents cannot be told apart in the store."""
    assert RING.seal(b"same", context=CTX) != RING.seal(b"same", context=CTX)


@given(st.binary(min_size=1, max_size=256), st.data())
def test_any_altered_byte_breaks_the_seal(plaintext: bytes, data: st.DataObject) -> None:
    sealed = bytearray(RING.seal(plaintext, context=CTX))
    at = data.draw(st.integers(0, len(sealed) - 1))
    sealed[at] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealBroken) as e:
        RING.open(bytes(sealed), context=CTX)
    if len(plaintext) >= 6:  # shorter could be in the words of any message by chance
        assert plaintext.hex() not in str(e.value)


def test_a_value_moved_to_another_column_does_not_open() -> None:
    sealed = RING.seal(b"Kari Nordmann", context=b"messages.canonical")
    with pytest.raises(SealBroken, match=r"receipts\.body"):
        RING.open(sealed, context=b"receipts.body")


def test_a_value_under_an_unknown_key_names_the_key_and_nothing_else() -> None:
    sealed = KeyRing({"k2": K2}, "k2").seal(b"01018012345 Kari", context=CTX)
    with pytest.raises(SealBroken) as e:
        RING.open(sealed, context=CTX)
    assert "'k2'" in str(e.value)
    assert "not configured" in str(e.value)
    assert "Kari" not in str(e.value)
    assert "0101" not in str(e.value)


def test_a_header_edited_to_name_another_key_does_not_open() -> None:
    both = KeyRing({"k1": K1, "k2": K2}, "k1")
    sealed = both.seal(b"x", context=CTX)
    forged = sealed.replace(b"\x02k1", b"\x02k2", 1)
    with pytest.raises(SealBroken):
        both.open(forged, context=CTX)


@pytest.mark.parametrize("cut", [0, 1, 5, 6, 8, 8 + 12, 8 + 12 + 15])
def test_truncated_values_are_refused(cut: int) -> None:
    sealed = RING.seal(b"", context=CTX)  # header 8 + nonce 12 + tag 16
    with pytest.raises(SealBroken):
        RING.open(sealed[:cut], context=CTX)


@pytest.mark.parametrize(
    "value",
    [b"", b"{}", b'{"resourceType": "Bundle"}', MAGIC, MAGIC + b"\x05k1", MAGIC + b"\x02\xff\xfe"],
)
def test_what_was_never_sealed_is_refused(value: bytes) -> None:
    with pytest.raises(SealBroken):
        RING.open(value, context=CTX)


def test_rotation_seals_with_the_new_key_and_opens_with_both() -> None:
    old = RING.seal(b"before", context=CTX)
    rotated = KeyRing({"k2": K2, "k1": K1}, "k2")
    new = rotated.seal(b"after", context=CTX)
    assert rotated.key_id_of(new) == "k2"
    assert rotated.open(old, context=CTX) == b"before"
    assert rotated.open(new, context=CTX) == b"after"
    assert not rotated.is_current(old)
    assert rotated.key_ids == ("k2", "k1")


def test_the_key_ring_does_not_show_its_keys() -> None:
    assert K1.hex() not in repr(RING)
    assert b64(K1) not in repr(RING)


# --------------------------------------------------------------------------- configuration


def test_key_lines_first_is_current() -> None:
    ring = parse_key_lines(f"k2:{b64(K2)}, k1:{b64(K1)}", "env")
    assert ring.current_id == "k2"
    assert set(ring.key_ids) == {"k1", "k2"}


def test_key_lines_take_comments_new_lines_and_url_safe_base64() -> None:
    urlsafe = base64.urlsafe_b64encode(bytes([251] * 32)).decode().rstrip("=")
    ring = parse_key_lines(f"# keys\nk2:{urlsafe}  # new\n\nk1:{b64(K1)}\n", "file")
    assert ring.key_ids == ("k2", "k1")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no keys"),
        ("k1", "line 1: expected <key id>:<base64 key>"),
        (f"k1:{b64(K1)}\nk1:{b64(K2)}", "line 2: key id 'k1' given twice"),
        ("k1:not base64!!", "key 'k1' is not base64"),
        (f"k1:{b64(K1[:16])}", "key 'k1' is 16 bytes; AES-256 needs 32"),
        (f"bad id:{b64(K1)}", "key id 'bad id'"),
    ],
)
def test_key_line_errors_say_what_and_where(text: str, says: str) -> None:
    with pytest.raises(KeyConfigError) as e:
        parse_key_lines(text, "IPGW_DATA_KEYS")
    assert says in str(e.value)
    assert "IPGW_DATA_KEYS" in str(e.value)


def test_key_errors_never_repeat_key_material() -> None:
    secret = b64(K1[:31])
    with pytest.raises(KeyConfigError) as e:
        parse_key_lines(f"k1:{secret}", "env")
    assert secret not in str(e.value)
    with pytest.raises(KeyConfigError) as e:
        parse_key_lines(secret, "env")  # a key pasted without its id
    assert secret not in str(e.value)


def test_toml_key_file() -> None:
    ring = parse_key_toml(f'current = "k1"\n[keys]\nk2 = "{b64(K2)}"\nk1 = "{b64(K1)}"\n', "f")
    assert ring.current_id == "k1"
    assert parse_key_toml(f'[keys]\nk2 = "{b64(K2)}"\n', "f").current_id == "k2"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("keys = [", "not TOML"),
        ("current = 'k1'", "needs a [keys] table"),
        (f'current = "k9"\n[keys]\nk1 = "{b64(K1)}"', "current key 'k9' is not among the keys"),
        ("[keys]\nk1 = 5", "key 'k1' must be a base64 string"),
        (f'cur = "k1"\n[keys]\nk1 = "{b64(K1)}"', "unknown setting(s) ['cur']"),
    ],
)
def test_toml_key_file_errors(text: str, says: str) -> None:
    with pytest.raises(KeyConfigError) as e:
        parse_key_toml(text, "keys.toml")
    assert says in str(e.value)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.keys"
    path.write_text(f"k1:{b64(K1)}\n")
    path.chmod(0o640)
    with pytest.raises(KeyConfigError, match=r"open to group or others \(mode 640\); chmod 600"):
        read_key_file(path)
    path.chmod(0o600)
    assert read_key_file(path).current_id == "k1"


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="cannot read the key file"):
        read_key_file(tmp_path / "nope.keys")


def test_configuration_sources(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="not both"):
        keyring_from(f"k1:{b64(K1)}", tmp_path / "x", tmp_path)
    toml = tmp_path / "keys.toml"
    toml.write_text(f'[keys]\nk3 = "{b64(K2)}"\n')
    toml.chmod(0o600)
    assert keyring_from(None, toml, tmp_path).current_id == "k3"
    assert keyring_from(f"k1:{b64(K1)}", None, tmp_path).current_id == "k1"


def test_a_generated_key_is_kept_and_used_again(tmp_path: Path) -> None:
    first = generated_keyring(tmp_path / "var")
    sealed = first.seal(b"x", context=CTX)
    again = keyring_from(None, None, tmp_path / "var")
    assert again.open(sealed, context=CTX) == b"x"
    assert os.stat(tmp_path / "var" / "data.keys").st_mode & 0o777 == 0o600


def test_new_key_lines_parse_and_differ() -> None:
    a, b = new_key_line(), new_key_line("k9")
    assert parse_key_lines(a, "new").current_id == a.split(":")[0]
    assert parse_key_lines(b, "new").current_id == "k9"
    assert a.split(":")[1] != b.split(":")[1]
    with pytest.raises(KeyConfigError):
        new_key_line("no spaces")
