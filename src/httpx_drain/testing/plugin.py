"""The pytest plugin: fixtures for replay servers and the ``replay`` marker.

It lives in the top-level module ``_httpx_drain_pytestplugin`` (the ``httpx_drain`` entry
point), so that loading it imports nothing of httpx-drain until a test uses it; this module
names the same objects for code that imports them from here.
"""

from __future__ import annotations

import _httpx_drain_pytestplugin as _plugin
from _httpx_drain_pytestplugin import *  # noqa: F403

__all__ = _plugin.__all__
