"""The delivery port: what an adapter must do, and the registry that finds adapters by name.

The core never imports a concrete adapter. The directory names one per KE (``adapter =
"ke_inbox"``); the registry imports ``adapters.<name>`` and calls its ``create(context)``.
Adding a platform is one module in ``adapters/`` plus the name in the directory.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.config import Settings
from gateway.domain.model import CoordinatingUnit, NeedNotice
from gateway.store.database import Database


@dataclass(frozen=True)
class Delivery:
    message_id: str
    generation: int
    notice: NeedNotice
    unit: CoordinatingUnit
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivered:
    """The recipient has the message (not yet acknowledged: that comes from the recipient)."""

    detail: str


class DeliveryFailed(Exception):
    """The adapter could not deliver; ``retryable`` says whether trying again can help."""

    def __init__(self, detail: str, *, retryable: bool, code: str = "X99") -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.code = code


class DeliveryAdapter(Protocol):
    name: str

    async def deliver(self, delivery: Delivery) -> Delivered: ...


@dataclass(frozen=True)
class AdapterContext:
    settings: Settings
    db: Database


class UnknownAdapter(LookupError):
    pass


class AdapterRegistry:
    def __init__(self, context: AdapterContext) -> None:
        self.context = context
        self._adapters: dict[str, DeliveryAdapter] = {}

    def get(self, name: str) -> DeliveryAdapter:
        if name not in self._adapters:
            if not name.isidentifier():
                raise UnknownAdapter(name)
            try:
                module = importlib.import_module(f"adapters.{name}")
            except ModuleNotFoundError as e:
                raise UnknownAdapter(name) from e
            self._adapters[name] = module.create(self.context)
        return self._adapters[name]

    def check(self, names: set[str]) -> None:
        """Load every adapter the directory names, so a typo stops the start, not a message."""
        for name in sorted(names):
            self.get(name)
