"""Fixtures of the integration tests (the gateway, broker and settings are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.platforms import Platforms, started


@pytest.fixture(scope="module")
def platforms() -> Iterator[Platforms]:
    """A simulated FHIR platform and NHN message service, for the tests of one module."""
    fhir, nhn = started()
    yield fhir, nhn
    fhir.stop()
    nhn.stop()
