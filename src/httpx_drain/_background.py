"""Where drains run: inline in ``close()``, or in the background after it returns."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._streams import AsyncDrainStream, SyncDrainStream

__all__ = ["AsyncInlineRunner", "AsyncRunner", "SyncInlineRunner", "SyncRunner"]


class SyncRunner:
    """Runs the drains of one sync transport."""

    def submit(self, stream: SyncDrainStream) -> None:
        """Drain ``stream``; it closes its inner stream when done."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish or abort pending drains."""


class AsyncRunner:
    """Runs the drains of one async transport."""

    async def submit(self, stream: AsyncDrainStream) -> None:
        """Drain ``stream``; it closes its inner stream when done."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Finish or abort pending drains."""


class SyncInlineRunner(SyncRunner):
    """Drain in ``close()`` itself, within the deadline."""

    def submit(self, stream: SyncDrainStream) -> None:
        stream.drain()


class AsyncInlineRunner(AsyncRunner):
    """Drain in ``aclose()`` itself, within the deadline."""

    async def submit(self, stream: AsyncDrainStream) -> None:
        await stream.drain()
