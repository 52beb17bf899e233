"""The streaming standbys that GET requests read from: which one may serve a read, and when.

A background task per standby polls its replay position, then the primary's WAL position,
every DB_STANDBY_POLL_INTERVAL, over connections of its own (pg_runtime/engine.py's poll
engines); a request chooses from what the polls last saw, at no round trip. A standby
serves a read when it is up, in recovery, and either
- within DB_STANDBY_MAX_LAG bytes of the primary (a read without a consistency token), or
- past the token's position (a read that must see the client's own write).
Otherwise the read goes to the primary. A standby that fails a read or a poll (a poll
that gets no answer within DB_CONNECT_TIMEOUT fails) is left out for
DB_STANDBY_RETRY_AFTER seconds, then the next good poll brings it back.

Each DATABASE_READ_URL must name one server: behind a load balancer that spreads
connections over several, the poll measures one server and the read may land on another.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client import Counter
from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from pg_runtime.failures import DatabaseNoAnswerError, DatabaseUnavailableError, describe, sqlstate
from pg_runtime.observability import metrics
from pg_runtime.wal import parse_position

logger = logging.getLogger(__name__)

State = Literal["unknown", "ok", "lagging", "down", "not a standby"]

# Where the primary's next WAL record goes: the position a commit's token carries too.
_PRIMARY_POSITION = text("SELECT pg_current_wal_insert_lsn()::text")
# A promoted standby keeps its last replay position: pg_is_in_recovery() tells.
_STANDBY_POSITION = text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")

# What a standby may fail with that the primary would not: the read is retried there once.
# 08: the connection failed; 53: too many connections; 57P01-57P03: shutting down or
# starting. 40001 on a standby is a conflict with the WAL it replays (a vacuumed row the
# query still needed), and a pool timeout means it is busy: both are retried on the
# primary with the standby kept in rotation.
_LOST_CLASSES = {"08", "53"}
_LOST_STATES = {"57P01", "57P02", "57P03"}
RECOVERY_CONFLICT = "40001"


def lost_standby(error: BaseException) -> bool:
    """Whether `error`, raised by a read on a standby, is the standby's failure."""
    if isinstance(error, DatabaseUnavailableError | DatabaseNoAnswerError | PoolTimeoutError):
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
    # Ours name the driver's error in their message (pg_runtime/failures.py): never a value.
    if isinstance(error, DatabaseUnavailableError | DatabaseNoAnswerError):
        return f"{type(error).__name__}: {error}"
    return describe(error)


@dataclass
class Standby:
    name: str  # standby-0, standby-1, … in DATABASE_READ_URL's order: no host in logs
    engine: AsyncEngine  # the requests' pool
    poll_engine: AsyncEngine  # the polls' connection
    state: State = "unknown"
    replayed: int | None = None  # WAL position replayed, as last polled
    lag: int | None = None  # bytes of WAL behind the primary, as last polled
    reason: str | None = None  # why it is down, as a log line may say it
    out_until: float = 0.0  # monotonic time before which it serves nothing
    failures: int = 0  # a poll that began before the latest failure is out of date
    # db_reads_total's child for this standby, looked up once, not per read.
    reads: Counter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.reads = metrics.READS.labels(self.name)

    def serves(self, after: int | None, now: float) -> bool:
        if self.state != "ok" or now < self.out_until:
            return False
        return after is None or (self.replayed is not None and self.replayed >= after)


@dataclass
class Standbys:
    standbys: list[Standby]
    primary: AsyncEngine  # the polls' connections to the primary, one per standby
    max_lag: int
    poll_interval: float
    retry_after: float
    _turn: int = 0
    _pollers: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    # db_reads_total's child for reads that fall to the primary.
    primary_reads: Counter = field(
        default_factory=lambda: metrics.READS.labels("primary"), init=False, repr=False
    )

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
        failure was the read's own (a recovery conflict) or the pool's (busy, not down)."""
        if sqlstate(error) == RECOVERY_CONFLICT or isinstance(error, PoolTimeoutError):
            return
        self._down(standby, _reason(error))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._pollers = [
            loop.create_task(self._poll_forever(standby), name=f"poll {standby.name}")
            for standby in self.standbys
        ]

    async def close(self) -> None:
        """Stop polling and close the polls' connections (not the requests' pools)."""
        for poller in self._pollers:
            poller.cancel()
        await asyncio.gather(*self._pollers, return_exceptions=True)
        self._pollers = []
        for engine in [standby.poll_engine for standby in self.standbys] + [self.primary]:
            await engine.dispose()

    async def poll(self, standby: Standby) -> None:
        """Read `standby`'s replay position, then the primary's, and decide if it serves."""
        failures = standby.failures
        try:
            in_recovery, replayed = await self._fetch(standby.poll_engine, _STANDBY_POSITION)
        except Exception as error:
            self._down(standby, _reason(error))
            return
        if standby.failures != failures:
            return  # a read failed on it meanwhile: this poll's news is older
        if not in_recovery:
            if standby.state != "not a standby":
                logger.error(
                    "%s is not in recovery (promoted, or DATABASE_READ_URL names a primary): "
                    "no reads go to it",
                    standby.name,
                )
            standby.state, standby.reason, standby.lag = "not a standby", "not in recovery", None
            metrics.STANDBY_SERVING.labels(standby.name).set(0)
            return
        standby.replayed = parse_position(replayed)
        try:
            # After the standby's: a lag read this way is never less than the true one.
            (primary_position,) = await self._fetch(self.primary, _PRIMARY_POSITION)
        except Exception:  # the primary's own troubles show elsewhere (/health, 503s)
            primary_position = None  # no new WAL without it: the last lag stands
        if primary_position is not None:
            standby.lag = max(0, parse_position(primary_position) - standby.replayed)
            metrics.STANDBY_LAG.labels(standby.name).set(standby.lag)
        if time.monotonic() < standby.out_until or standby.failures != failures:
            return
        close_enough = standby.lag is not None and standby.lag <= self.max_lag
        state: State = "ok" if close_enough else "lagging"
        if state != standby.state:
            logger.info("%s is %s (%s bytes behind)", standby.name, state, standby.lag)
        standby.state, standby.reason = state, None
        metrics.STANDBY_SERVING.labels(standby.name).set(1 if state == "ok" else 0)

    async def _poll_forever(self, standby: Standby) -> None:
        while True:
            try:
                await self.poll(standby)
            except Exception:  # a bug; polling goes on, or the standby's state would freeze
                logger.exception("polling %s failed", standby.name)
            await asyncio.sleep(self.poll_interval)

    def _down(self, standby: Standby, reason: str) -> None:
        if standby.state != "down":
            logger.warning(
                "%s is out of rotation for %g s: %s", standby.name, self.retry_after, reason
            )
        standby.state, standby.reason, standby.lag = "down", reason, None
        standby.failures += 1
        standby.out_until = time.monotonic() + self.retry_after
        metrics.STANDBY_SERVING.labels(standby.name).set(0)

    @staticmethod
    async def _fetch(engine: AsyncEngine, query: TextClause) -> tuple[Any, ...]:
        async with engine.connect() as connection:
            return tuple((await connection.execute(query)).one())
