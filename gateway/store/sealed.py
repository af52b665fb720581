"""Column types that seal on the way in and open on the way out (gateway/sealing.py).

The repository reads and writes plain ``bytes`` and ``str``; only the database sees
ciphertext. Each column seals for its own context (``table.column``), so a ciphertext moved
to another column does not open.

Which keys? Each :class:`~gateway.store.database.Database` has its own key ring (tests run
several gateways, each with its own keys, in one process), so the ring cannot be a global.
SQLAlchemy hands a type's bind and result processing the *dialect* of the engine that runs
the statement, and every engine has its own dialect instance: the Database puts its ring on
the dialects of its engines (:func:`bind_keyring`) and the types find it there
(:func:`keyring_of`). Migrations run on the Database's own connection, so they find it too.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, LargeBinary, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator, TypeEngine

from gateway.sealing import KeyRing, SealBroken

log = logging.getLogger(__name__)

_ATTR = "ipgw_keyring"
#: what a note column reads as when its stored value does not open
UNREADABLE_NOTE = "[stored text does not open]"


def bind_keyring(engine: Engine, keyring: KeyRing) -> None:
    setattr(engine.dialect, _ATTR, keyring)


def keyring_of(dialect: Dialect) -> KeyRing:
    keyring = getattr(dialect, _ATTR, None)
    if not isinstance(keyring, KeyRing):
        raise RuntimeError("no key ring on this engine: open the store through Database")
    return keyring


class _SealedComparator(TypeDecorator.Comparator[Any]):
    """Sealing is randomised (a fresh nonce each time): ``column == value`` in SQL could never
    match, silently. Only NULL tests are allowed; compare after reading."""

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        if op in (operators.is_, operators.is_not):
            return super().operate(op, *other, **kwargs)
        raise TypeError("a sealed column cannot be compared or searched in SQL")

    def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
        raise TypeError("a sealed column cannot be compared or searched in SQL")


class Sealed(TypeDecorator[bytes]):
    """``bytes`` sealed into a binary column."""

    impl = LargeBinary
    cache_ok = True
    comparator_factory = _SealedComparator

    def __init__(self, context: str) -> None:
        super().__init__()
        #: the column it seals for, e.g. ``messages.raw``: the ciphertext's associated data
        self.context = context
        self._context = context.encode("ascii")

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return keyring_of(dialect).seal(bytes(value), context=self._context)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return keyring_of(dialect).open(bytes(value), context=self._context)


class SealedText(TypeDecorator[str]):
    """``str`` (UTF-8) sealed into a binary column.

    PostgreSQL declares it ``bytea``. SQLite keeps the ``TEXT`` the column was created with:
    changing a declared type there means rebuilding the table, which foreign keys into
    ``messages`` forbid inside a migration's transaction; SQLite stores a BLOB as a BLOB
    whatever the declared type, so nothing is converted.
    """

    impl = LargeBinary
    cache_ok = True
    comparator_factory = _SealedComparator

    def __init__(self, context: str, *, note: bool = False) -> None:
        super().__init__()
        self.context = context
        #: an explanation for people (a reason, a timeline entry), not content: one that does
        #: not open reads as a marker saying so (and is logged), so that it cannot take the
        #: lists and timelines it appears in down with it; content raises SealBroken
        self.note = note
        self._context = context.encode("ascii")

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return keyring_of(dialect).seal(str(value).encode(), context=self._context)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            if isinstance(value, str):  # SQLite handed back TEXT: stored in clear, not sealed
                raise SealBroken("not a sealed value")
            return keyring_of(dialect).open(bytes(value), context=self._context).decode()
        except SealBroken as e:
            if not self.note:
                raise
            log.error("a stored %s does not open: %s", self.context, e)
            return f"{UNREADABLE_NOTE} ({e})"
