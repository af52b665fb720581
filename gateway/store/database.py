"""The store's engine: every transaction runs whole on a store thread, off the event loop.

Why not SQLAlchemy's asyncio extension: with aiosqlite every statement is three or four hops
between the event loop and the driver's thread, about 0.3 ms each way round on this machine;
a three-insert transaction took 2.5 ms (≈ 390 tx/s). The same transaction as one synchronous
function on a store thread takes ≈ 0.7 ms (≈ 1,400 tx/s), most of it SQLite's commit. The API
stays async: ``await db.write(fn, ...)`` runs ``fn(connection, ...)`` in one transaction.

SQLite allows one writer at a time: all writes go through one thread and one connection that
opens ``BEGIN IMMEDIATE``, so writers queue instead of failing with ``database is locked``,
and readers (WAL) are never blocked. PostgreSQL gets one pooled engine and a thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from gateway.sealing import KeyRing, generated_keyring, new_key_line, parse_key_lines
from gateway.store.sealed import bind_keyring, keyring_of

MIGRATIONS = Path(str(files("gateway.store") / "migrations"))

P = ParamSpec("P")
T = TypeVar("T")

#: most transactions a grouped commit carries
GROUP_MAX = 256


def _sqlite_engine(url: str, *, writer: bool, secure_delete: bool = False) -> Engine:
    engine = create_engine(
        url,
        pool_size=1 if writer else 4,
        max_overflow=0,
        pool_timeout=60,
        hide_parameters=True,  # parameters hold person data: keep them out of exceptions
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
            *(["secure_delete=ON"] if secure_delete else []),
        ):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


#: async drivers named in a URL -> the synchronous driver the store threads use
_SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}


class Database:
    """The store. ``keyring`` seals person data (gateway/sealing.py); without one, a SQLite
    file gets the key generated beside it (demo, development, tests) and an in-memory one a key
    that lives as long as it does. ``secure_delete``: SQLite overwrites what a write frees
    (for re-sealing: no old ciphertext or clear text is left in free pages)."""

    def __init__(
        self, url: str, keyring: KeyRing | None = None, *, secure_delete: bool = False
    ) -> None:
        parsed = make_url(url)
        self.url = parsed.set(drivername=_SYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
        url = self.url.render_as_string(hide_password=False)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self._writer = _sqlite_engine(url, writer=True, secure_delete=secure_delete)
            self._reader = _sqlite_engine(url, writer=False, secure_delete=secure_delete)
            self._write_pool = concurrent.futures.ThreadPoolExecutor(1, "store-write")
            self._read_pool = concurrent.futures.ThreadPoolExecutor(4, "store-read")
        else:
            self._writer = self._reader = create_engine(
                url, pool_size=8, max_overflow=4, hide_parameters=True
            )
            self._write_pool = self._read_pool = concurrent.futures.ThreadPoolExecutor(8, "store")
        self.keyring = keyring or _default_keyring(self.url)
        # the sealed column types find the ring on the engine's dialect (gateway/store/sealed.py)
        bind_keyring(self._writer, self.keyring)
        bind_keyring(self._reader, self.keyring)
        self._group: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._group_task: asyncio.Task[None] | None = None

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in one transaction that may write; rolled back if it raises."""
        return await self._run(self._writer, self._write_pool, fn, *args, **kwargs)

    async def write_grouped(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like :meth:`write`, but concurrent callers share one commit (group commit).

        For many small independent writes (one per HTTP request): each ``fn`` runs in its own
        savepoint, so one that raises is rolled back alone; the result returns once the group
        has committed. An idle store commits a lone caller at once.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._group.append((lambda conn: fn(conn, *args, **kwargs), future))
        if self._group_task is None or self._group_task.done():
            self._group_task = asyncio.create_task(self._flush_groups())
        return await future

    async def _flush_groups(self) -> None:
        while self._group:
            batch, self._group = self._group[:GROUP_MAX], self._group[GROUP_MAX:]
            try:
                results = await self.write(_each_in_savepoint, [fn for fn, _ in batch])
            except Exception as e:
                results = [(False, e)] * len(batch)
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():
                    continue  # the caller went away; its write stands
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in a read transaction (one consistent snapshot)."""
        return await self._run(self._reader, self._read_pool, fn, *args, **kwargs)

    @staticmethod
    async def _run(
        engine: Engine,
        pool: concurrent.futures.Executor,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        def transaction() -> T:
            with engine.begin() as conn:
                return fn(conn, *args, **kwargs)

        loop = asyncio.get_running_loop()
        # in the caller's context: log lines from the transaction keep its message and
        # correlation ids (gateway/logs.py)
        return await loop.run_in_executor(pool, contextvars.copy_context().run, transaction)

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema to the newest migration (idempotent; safe at every start)."""
        await self.write(_upgrade, revision)
        await self.checkpoint()

    async def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file and empty it, so what a
        migration or a rotation replaced is not left in the log. Best effort: a reader that
        holds an old snapshot keeps the log until the next checkpoint."""
        if self.is_sqlite:
            await self._outside_transaction("PRAGMA wal_checkpoint(TRUNCATE)")

    async def vacuum(self) -> None:
        """SQLite: rebuild the file from the live rows only, so nothing a write replaced or a
        delete freed (values under a retired key) is left in free pages. Holds the one writer
        for as long as the rebuild takes: seconds on a small store, long on a large one."""
        if self.is_sqlite:
            await self._outside_transaction("VACUUM")
            await self.checkpoint()

    async def _outside_transaction(self, sql: str) -> None:
        def run() -> None:
            raw = self._writer.raw_connection()
            try:
                driver = raw.driver_connection  # the sqlite3 connection, outside any BEGIN
                assert driver is not None
                driver.execute(sql)
            finally:
                raw.close()

        await asyncio.get_running_loop().run_in_executor(self._write_pool, run)

    async def ping(self) -> None:
        await self.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    async def close(self) -> None:
        """Wait for the store threads off the event loop: a transaction still running (a
        write waiting for SQLite's lock) must not freeze everything else that is stopping."""

        def shut() -> None:
            self._write_pool.shutdown(wait=True)
            self._read_pool.shutdown(wait=True)
            self._writer.dispose()
            self._reader.dispose()

        await asyncio.to_thread(shut)


def _each_in_savepoint(
    conn: Connection, fns: list[Callable[[Connection], Any]]
) -> list[tuple[bool, Any]]:
    out: list[tuple[bool, Any]] = []
    for fn in fns:
        try:
            with conn.begin_nested():
                out.append((True, fn(conn)))
        except Exception as e:
            out.append((False, e))
    return out


def _upgrade(conn: Connection, revision: str = "head") -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    # the migration that seals what was stored in clear (0008) needs the keys
    cfg.attributes["keyring"] = keyring_of(conn.dialect)
    command.upgrade(cfg, revision)


def _default_keyring(url: URL) -> KeyRing:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return generated_keyring(Path(url.database).parent)
    if url.get_backend_name() == "sqlite":
        return parse_key_lines(new_key_line("memory"), "in-memory store")
    raise ValueError("a store other than a SQLite file needs its keys configured")
