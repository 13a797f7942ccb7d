"""The pytest plugin: fixtures for replay servers and the ``replay`` marker.

It lives in the top-level module ``_httpx_drain_pytestplugin`` (the ``httpx_drain`` entry
point), so that loading it imports nothing of httpx-drain until a test uses it; this module
names the same objects for code that imports them from here.
"""

from __future__ import annotations

from _httpx_drain_pytestplugin import (
    async_replay_server,
    async_replay_server_factory,
    pytest_configure,
    pytest_generate_tests,
    replay_server,
    replay_server_factory,
    replay_spec,
)

__all__ = [
    "async_replay_server",
    "async_replay_server_factory",
    "pytest_configure",
    "pytest_generate_tests",
    "replay_server",
    "replay_server_factory",
    "replay_spec",
]
