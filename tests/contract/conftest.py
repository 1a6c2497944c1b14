"""The ComfyUI server the contract suite runs its `comfy` backend against (see comfy_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.comfy_server import Server, shared_server


@pytest.fixture(scope="session")
def comfy_server() -> Iterator[Server]:
    server = shared_server()
    yield server
    server.stop()
