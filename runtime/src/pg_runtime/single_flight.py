"""One run of a check at a time, whose answer every caller that arrives meanwhile shares."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """`check`, run once for every caller awaiting it at the time.

    For the health probes (pg_runtime/health.py), which are public: a burst of them costs
    the database one check, and never queues an orchestrator's probe behind the others'
    on the one health connection.
    """

    def __init__(self, check: Callable[[], Awaitable[T]]) -> None:
        self._check = check
        self._running: asyncio.Future[T] | None = None

    async def __call__(self) -> T:
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
            self._running.add_done_callback(self._done)
        # Shielded: a client that hangs up does not cancel the others' answer.
        return await asyncio.shield(self._running)

    def _done(self, _: "asyncio.Future[T]") -> None:
        self._running = None
