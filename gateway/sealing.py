"""Encryption of person data at rest: AES-256-GCM under named keys, with rotation.

A *sealed* value is ``b"ipgw1" | len(key id) | key id | nonce (12) | ciphertext + tag (16)``.
The key id travels with every ciphertext, so a store may hold values under several keys at
once: a new key becomes current for writing while values under older keys still open
(rotation without downtime), and ``ipgw keys rotate`` re-seals them under the current key
before the old one is retired.

Every value is sealed for a ``context`` (the table and column it lives in), taken as AES-GCM
associated data together with the header: a ciphertext copied into another column, or a
header edited to name another key, does not open. A value that does not open raises
:class:`SealBroken`, whose text names the key id and context but never data or key material.

Keys come from configuration (``IPGW_DATA_KEYS`` or ``IPGW_DATA_KEYS_FILE``); without either,
a key is generated once into the data directory, as the pseudonym key is (for the demo and
development only: a key kept beside the data it protects does not protect a copy of both).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from gateway.config import Settings

log = logging.getLogger(__name__)

MAGIC = b"ipgw1"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
#: a key id: short, printable, safe in a log line and in a file of ``id:key`` lines
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
#: the longest header (magic, length byte, id): what to read to learn a value's key id
MAX_HEADER = len(MAGIC) + 1 + 32

#: the key file generated into the data directory when none is configured (demo, development)
GENERATED_KEYS_FILE = "data.keys"


class SealBroken(Exception):
    """A stored value that does not open: tampered, truncated, sealed for another column, or
    under a key that is not configured. The text names no data."""


class KeyConfigError(ValueError):
    """The configured keys cannot be used; the text says where and why, never a key."""


@dataclass(frozen=True)
class Header:
    key_id: str
    #: bytes before the nonce: magic, id length, id
    size: int


def header_of(sealed: bytes) -> Header:
    """The key id a sealed value names (nothing is decrypted)."""
    if len(sealed) < len(MAGIC) + 2 or not sealed.startswith(MAGIC):
        raise SealBroken("not a sealed value")
    n = sealed[len(MAGIC)]
    size = len(MAGIC) + 1 + n
    if len(sealed) < size:
        raise SealBroken("sealed value truncated in its header")
    raw_id = sealed[len(MAGIC) + 1 : size]
    try:
        key_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        raise SealBroken("sealed value has a malformed key id") from None
    if not KEY_ID.fullmatch(key_id):
        raise SealBroken("sealed value has a malformed key id")
    return Header(key_id, size)


def prefix_for(key_id: str) -> bytes:
    """How every value sealed under ``key_id`` begins (for finding them in SQL)."""
    raw = key_id.encode("ascii")
    return MAGIC + bytes([len(raw)]) + raw


class KeyRing:
    """Key id -> 256-bit AES key. The current key seals; every key opens.

    Thread-safe: AESGCM objects keep no state between calls. The keys never appear in
    ``repr`` or in an error.
    """

    def __init__(self, keys: Mapping[str, bytes], current_id: str) -> None:
        if current_id not in keys:
            raise KeyConfigError(f"current key {current_id!r} is not among the keys")
        for key_id, key in keys.items():
            if not KEY_ID.fullmatch(key_id):
                raise KeyConfigError(f"key id {key_id!r} is not 1-32 of A-Z a-z 0-9 . _ -")
            if len(key) != KEY_BYTES:
                raise KeyConfigError(
                    f"key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
                )
        self.current_id = current_id
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._prefix = prefix_for(current_id)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id, the current one first."""
        return (self.current_id, *(k for k in self._aead if k != self.current_id))

    @property
    def current_prefix(self) -> bytes:
        return self._prefix

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt under the current key, bound to ``context`` (the column it is stored in)."""
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: rotate well before 2**32 values
        body = self._aead[self.current_id].encrypt(nonce, plaintext, self._prefix + context)
        return self._prefix + nonce + body

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        """Decrypt and check; :class:`SealBroken` when the value is not what was sealed here."""
        header = header_of(sealed)
        aead = self._aead.get(header.key_id)
        if aead is None:
            raise SealBroken(f"sealed under key {header.key_id!r}, which is not configured")
        if len(sealed) < header.size + NONCE_BYTES + TAG_BYTES:
            raise SealBroken(f"sealed value under key {header.key_id!r} is truncated")
        nonce = sealed[header.size : header.size + NONCE_BYTES]
        try:
            return aead.decrypt(
                nonce, sealed[header.size + NONCE_BYTES :], sealed[: header.size] + context
            )
        except InvalidTag:
            raise SealBroken(
                f"sealed value under key {header.key_id!r} does not open for "
                f"{context.decode('ascii', 'replace')}: altered, truncated or from elsewhere"
            ) from None

    def key_id_of(self, sealed: bytes) -> str:
        return header_of(sealed).key_id

    def is_current(self, sealed: bytes) -> bool:
        return sealed.startswith(self._prefix)

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current_id!r}, ids={list(self.key_ids)!r})"


# --------------------------------------------------------------------------- configuration


def new_key_line(key_id: str | None = None) -> str:
    """A fresh ``id:base64key`` line (``ipgw keys new``). The default id says when it was made,
    so an operator can tell keys apart by age."""
    key_id = key_id or f"k{dt.datetime.now(dt.UTC):%Y%m%d}-{secrets.token_hex(2)}"
    if not KEY_ID.fullmatch(key_id):
        raise KeyConfigError(f"key id {key_id!r} is not 1-32 of A-Z a-z 0-9 . _ -")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def _decode_key(text: str, where: str, key_id: str) -> bytes:
    text = text.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{where}: key {key_id!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigError(
            f"{where}: key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES} "
            "(`ipgw keys new` makes one)"
        )
    return key


def _ring(entries: Iterable[tuple[str, str, str]], where: str, current: str | None) -> KeyRing:
    """``entries``: (where, key id, base64 key), the current key first unless ``current``."""
    keys: dict[str, bytes] = {}
    for place, key_id, text in entries:
        if not KEY_ID.fullmatch(key_id):
            raise KeyConfigError(f"{place}: key id {key_id!r} is not 1-32 of A-Z a-z 0-9 . _ -")
        if key_id in keys:
            raise KeyConfigError(f"{place}: key id {key_id!r} given twice")
        keys[key_id] = _decode_key(text, place, key_id)
    if not keys:
        raise KeyConfigError(f"{where}: no keys")
    current = current or next(iter(keys))
    if current not in keys:
        raise KeyConfigError(f"{where}: current key {current!r} is not among the keys")
    return KeyRing(keys, current)


def parse_key_lines(text: str, where: str) -> KeyRing:
    """``id:base64key`` entries separated by commas or new lines (``#`` starts a comment); the
    first is current. Errors say where, never the key."""
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for item in line.split(","):
            item = item.strip()
            if not item:
                continue
            key_id, sep, key = item.partition(":")
            if not sep or not key_id.strip() or not key.strip():
                raise KeyConfigError(f"{where} line {n}: expected <key id>:<base64 key>")
            entries.append((f"{where} line {n}", key_id.strip(), key))
    return _ring(entries, where, None)


def parse_key_toml(text: str, where: str) -> KeyRing:
    """``current = "k2"`` (optional: else the first) and a ``[keys]`` table of id = base64."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # the parser's message quotes no value, only the position
        raise KeyConfigError(f"{where}: not TOML ({e})") from None
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise KeyConfigError(f"{where}: needs a [keys] table of <key id> = <base64 key>")
    unknown = set(data) - {"keys", "current"}
    if unknown:
        raise KeyConfigError(f"{where}: unknown setting(s) {sorted(unknown)}")
    current = data.get("current")
    if current is not None and not isinstance(current, str):
        raise KeyConfigError(f"{where}: current must be a key id")
    entries = []
    for key_id, key in keys.items():
        if not isinstance(key, str):
            raise KeyConfigError(f"{where}: key {key_id!r} must be a base64 string")
        entries.append((where, key_id, key))
    return _ring(entries, where, current)


def read_key_file(path: Path) -> KeyRing:
    """A key file: TOML when it ends in ``.toml``, else ``id:key`` lines. It must be readable
    by its owner only: keys that anyone on the host can read protect nothing."""
    where = str(path)
    try:
        st = path.stat()
    except OSError as e:
        raise KeyConfigError(f"{where}: cannot read the key file ({e.strerror})") from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyConfigError(
            f"{where}: key file is open to group or others (mode {stat.S_IMODE(st.st_mode):o});"
            " chmod 600 it"
        )
    text = path.read_text("utf-8")
    return parse_key_toml(text, where) if path.suffix == ".toml" else parse_key_lines(text, where)


def generated_keyring(data_dir: Path) -> KeyRing:
    """The key kept in ``data_dir`` (made on first use). Values sealed with it depend on it:
    it must stay with the store, and ``IPGW_DATA_KEYS`` can take it over (its line is in the
    file) when real keys are configured."""
    path = data_dir / GENERATED_KEYS_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made meanwhile by another process on this data dir
        else:
            with os.fdopen(fd, "w") as f:
                f.write(
                    "# generated by ip-gateway for development: configure IPGW_DATA_KEYS or\n"
                    "# IPGW_DATA_KEYS_FILE for real data, keeping this key among them\n"
                    f"{new_key_line('local1')}\n"
                )
    return read_key_file(path)


def keyring_from(keys: str | None, keys_file: Path | None, data_dir: Path) -> KeyRing:
    if keys and keys_file:
        raise KeyConfigError("set IPGW_DATA_KEYS or IPGW_DATA_KEYS_FILE, not both")
    if keys:
        return parse_key_lines(keys, "IPGW_DATA_KEYS")
    if keys_file:
        return read_key_file(keys_file)
    log.warning(
        "no data keys configured (IPGW_DATA_KEYS / IPGW_DATA_KEYS_FILE): using the key "
        "generated into the data directory; not for real data"
    )
    return generated_keyring(data_dir)


def load_keyring(settings: Settings) -> KeyRing:
    """The keys the settings name (see the README, "Keys and encryption at rest")."""
    return keyring_from(
        settings.data_keys.get_secret_value() if settings.data_keys else None,
        settings.data_keys_file,
        settings.data_dir,
    )
