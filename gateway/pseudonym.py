"""Keyed pseudonyms for person ids: look a person up without keeping the id in clear."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("pseudonym key must be at least 32 bytes")
        self._key = key

    def __call__(self, person_id: str) -> str:
        return hmac.new(self._key, person_id.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "Pseudonymizer(<key hidden>)"


def load_or_create_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else the one kept in ``data_dir`` (created on first start).

    A generated key must survive restarts: pseudonyms already stored depend on it.
    """
    if configured:
        return configured.encode()
    path = data_dir / "pseudonym.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key
