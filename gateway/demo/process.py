"""The gateway as a child process (``python -m gateway serve``), for end-to-end tests and
benchmarks: the same way operators run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.auth.dev_issuer import DevIssuer
from gateway.broker import free_port
from gateway.config import DEFAULT_DIRECTORY
from gateway.demo.tokens import PartyTokens
from gateway.directory import load_directory


class GatewayProcess:
    """``python -m gateway serve`` as a child process, as operators run it."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "IPGW_DATA_DIR": str(data_dir),
            "IPGW_PORT": str(self.port),
            "IPGW_ACCEPT_SYNTHETIC_IDS": "true",
            "IPGW_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        log = (self.data_dir / "gateway.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {(self.data_dir / 'gateway.log').read_text()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway did not become ready")

    def auth(self, **options: Any) -> PartyTokens:
        """The tokens its callers carry: minted by the development issuer whose key the
        gateway keeps in its data directory (gateway/demo/tokens.py)."""
        issuer = DevIssuer.load_or_create(self.data_dir)
        listed = self.env.get("IPGW_DIRECTORY_FILE")
        directory = load_directory(Path(listed) if listed else DEFAULT_DIRECTORY)
        return PartyTokens(issuer, lambda: directory, **options)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
