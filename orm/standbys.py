"""The streaming standbys that GET requests read from: which one may serve a read, and when.

A background task polls each standby's replay position, and the primary's write position,
every DB_STANDBY_POLL_INTERVAL; a request chooses from what it last saw, at no round trip.
A standby serves a read when it is up, in recovery, and either
- within DB_STANDBY_MAX_LAG bytes of the primary (a read without a consistency token), or
- past the token's position (a read that must see the client's own write).
Otherwise the read goes to the primary. A standby that fails a read or a poll is left out
for DB_STANDBY_RETRY_AFTER seconds, then the next good poll brings it back.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.observability import metrics
from orm.failures import DatabaseNoAnswerError, DatabaseUnavailableError, describe, sqlstate
from orm.wal import parse_position

logger = logging.getLogger(__name__)

State = Literal["unknown", "ok", "lagging", "down", "not a standby"]

_POSITION = text("SELECT pg_current_wal_insert_lsn()::text")
# NULL on a server that is not in recovery: promoted, or not a standby at all.
_REPLAYED = text("SELECT pg_last_wal_replay_lsn()::text")

# What a standby may fail with that the primary would not: the read is retried there once.
# 08: the connection failed; 53: too many connections; 57P01-57P03: shutting down or
# starting. 40001 on a standby is a conflict with the WAL it replays (a vacuumed row the
# query still needed): retried on the primary, the standby kept.
_LOST_CLASSES = {"08", "53"}
_LOST_STATES = {"57P01", "57P02", "57P03"}
RECOVERY_CONFLICT = "40001"


def lost_standby(error: BaseException) -> bool:
    """Whether `error`, raised by a read on a standby, is the standby's failure."""
    if isinstance(error, DatabaseUnavailableError | DatabaseNoAnswerError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    code = sqlstate(error) or ""
    return (
        error.connection_invalidated
        or code in _LOST_STATES
        or code[:2] in _LOST_CLASSES
        or code == RECOVERY_CONFLICT
    )


def _reason(error: BaseException) -> str:
    # Ours name the driver's error in their message (orm/failures.py): never a value.
    if isinstance(error, DatabaseUnavailableError | DatabaseNoAnswerError):
        return f"{type(error).__name__}: {error}"
    return describe(error)


@dataclass
class Standby:
    name: str  # standby-0, standby-1, … in DATABASE_READ_URL's order: no host in logs
    engine: AsyncEngine
    state: State = "unknown"
    replayed: int | None = None  # WAL position replayed, as last polled
    lag: int | None = None  # bytes of WAL behind the primary, as last polled
    reason: str | None = None  # why it is down, as a log line may say it
    out_until: float = 0.0  # monotonic time before which it serves nothing

    def serves(self, after: int | None, now: float) -> bool:
        if self.state != "ok" or now < self.out_until:
            return False
        return after is None or (self.replayed is not None and self.replayed >= after)


@dataclass
class Standbys:
    standbys: list[Standby]
    primary: AsyncEngine  # where the primary's write position is read
    max_lag: int
    poll_interval: float
    retry_after: float
    _turn: int = 0
    _poller: asyncio.Task[None] | None = field(default=None, repr=False)

    def choose(self, after: int | None = None) -> Standby | None:
        """A standby for a read (in turn among those that serve it), or None: the primary."""
        now = time.monotonic()
        serving = [standby for standby in self.standbys if standby.serves(after, now)]
        if not serving:
            return None
        self._turn += 1
        return serving[self._turn % len(serving)]

    def failed(self, standby: Standby, error: BaseException) -> None:
        """A read on `standby` failed with `error`: leave it out for a while, unless the
        failure was the read's own (a recovery conflict)."""
        if sqlstate(error) == RECOVERY_CONFLICT:
            return
        self._down(standby, _reason(error))

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    async def poll(self) -> None:
        """Read the primary's position and each standby's, and decide who serves."""
        try:
            primary_position: int | None = await self._position(self.primary, _POSITION)
        except Exception:  # the primary's own troubles show elsewhere (/health, 503s)
            primary_position = None
        await asyncio.gather(*(self._poll(standby, primary_position) for standby in self.standbys))

    async def _poll_forever(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.poll_interval)

    async def _poll(self, standby: Standby, primary_position: int | None) -> None:
        try:
            replayed = await self._position(standby.engine, _REPLAYED)
        except Exception as error:
            self._down(standby, _reason(error))
            return
        if replayed is None:
            if standby.state != "not a standby":
                logger.error(
                    "%s is not in recovery (promoted, or DATABASE_READ_URL names a primary): "
                    "no reads go to it",
                    standby.name,
                )
            standby.state, standby.reason = "not a standby", "not in recovery"
            metrics.STANDBY_SERVING.labels(standby.name).set(0)
            return
        standby.replayed = replayed
        if primary_position is not None:
            standby.lag = max(0, primary_position - replayed)
            metrics.STANDBY_LAG.labels(standby.name).set(standby.lag)
        if time.monotonic() < standby.out_until:
            return
        state: State = (
            "ok" if standby.lag is not None and standby.lag <= self.max_lag else "lagging"
        )
        if state != standby.state:
            logger.info("%s is %s (%s bytes behind)", standby.name, state, standby.lag)
        standby.state, standby.reason = state, None
        metrics.STANDBY_SERVING.labels(standby.name).set(1 if state == "ok" else 0)

    def _down(self, standby: Standby, reason: str) -> None:
        if standby.state != "down":
            logger.warning(
                "%s is out of rotation for %g s: %s", standby.name, self.retry_after, reason
            )
        standby.state, standby.reason = "down", reason
        standby.out_until = time.monotonic() + self.retry_after
        metrics.STANDBY_SERVING.labels(standby.name).set(0)

    @staticmethod
    async def _position(engine: AsyncEngine, query: TextClause) -> int | None:
        async with engine.connect() as connection:
            position = await connection.scalar(query)
        return None if position is None else parse_position(position)
