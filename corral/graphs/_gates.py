"""``App(max_running=N)``: a bound on the async runs driven at once, per event loop."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any


class Gates:
    """A semaphore per event loop (an App may serve several loops, one after another or
    side by side); no bound when ``limit`` is ``None``."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._by_loop = weakref.WeakKeyDictionary()

    def __call__(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """This event loop's gate, to hold while a run is driven."""
        if self.limit is None:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        gate = self._by_loop.get(loop)
        if gate is None:
            gate = self._by_loop[loop] = asyncio.Semaphore(self.limit)
        return gate
