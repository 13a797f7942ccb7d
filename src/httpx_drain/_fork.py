"""What a child of ``fork()`` must not inherit from its parent's transports.

The child has one thread: the parent's watcher and workers are gone, and a lock one of them
held at the fork stays held for ever. Objects that own such state register here; their
``_after_fork()`` runs in the child, before ``os.fork()`` returns there.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Any

__all__ = ["register"]

_objects: weakref.WeakSet[Any] = weakref.WeakSet()


def register(obj: Any) -> None:
    """Call ``obj._after_fork()`` in the child of every later ``fork()`` while ``obj`` lives."""
    _objects.add(obj)


def _in_child() -> None:
    for obj in list(_objects):
        # An exception here would be printed and ignored by the interpreter: keep going.
        with contextlib.suppress(Exception):
            obj._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_in_child)
