"""A streaming standby of an embedded server, for tests of what reads from a replica see.

`pg_basebackup --write-recovery-conf` copies the primary's data folder and writes how to
stream from it; the copy runs as a throw-away embedded server on a port of its own.
No replication slot: a standby that a test stopped, or a killed run left behind, must
never make the primary keep WAL. Without one, a standby halted while the primary moves
on a whole WAL segment and checkpoints (each base backup and DROP DATABASE does) cannot
resume: it needs WAL the primary removed. Tests keep halts short.
"""

from dataclasses import dataclass, field
from pathlib import Path

import anyio
from sqlalchemy.engine import URL

from pg_harness.embedded.account import Account, server_account
from pg_harness.embedded.base_backup import make_standby_data
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.urls import connected, with_database

# The test servers commit asynchronously (synchronous_commit=off): just after a commit,
# pg_current_wal_lsn() (what is written) is still before it, and the walsender sends only
# flushed WAL. A message flushed to the WAL flushes all before it; replayed, it proves
# the standby holds every commit made before the call.
_FLUSHED_POSITION = "SELECT pg_logical_emit_message(false, 'pg_harness', '', true)::text"
_REPLAYED_PAST = "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn"


@dataclass
class Standby:
    """A hot standby of the server at `primary_url` (an admin URL: a superuser with its
    password, on this machine), its data in `data_dir`: a fresh folder the server's
    account can reach."""

    primary_url: URL
    data_dir: Path
    account: Account = field(default_factory=server_account)
    _server: EmbeddedPostgres | None = field(default=None, init=False, repr=False)
    _admin_url: URL | None = field(default=None, init=False, repr=False)

    def start(self) -> URL:
        """Copy the primary, start the copy streaming from it, return the standby's admin URL."""
        make_standby_data(self.primary_url, self.data_dir, self.account)
        self._server = EmbeddedPostgres(
            self.data_dir, throwaway=True, durable=False, account=self.account
        )
        port = self._server.start().port
        # The primary's credentials: the copy has the same roles, whoever the URL names.
        self._admin_url = self.primary_url.set(host="127.0.0.1", port=port)
        return self._admin_url

    def stop(self) -> None:
        """Stop the standby (fast) and remove its data."""
        if self._server is not None:
            self._server.stop()

    def halt(self) -> None:
        """Stop the standby's server, keeping its data: connections are refused until resume()."""
        self._started().halt()

    def resume(self) -> None:
        """Start the halted standby on its port again; it streams on from where it stopped."""
        self._started().resume()

    def url(self, database: str = "postgres") -> URL:
        """The standby's URL for `database`, a database of the primary's."""
        assert self._admin_url is not None, "url() needs a standby that start() started"
        return with_database(self._admin_url, database)

    async def pause_replay(self) -> None:
        """Stop applying WAL (it is still received) until resume_replay()."""
        async with connected(self.url()) as standby:
            await standby.execute("SELECT pg_wal_replay_pause()")
            # A pause is requested, then taken at the next record or wait for WAL.
            state = "SELECT pg_get_wal_replay_pause_state()"
            with anyio.fail_after(10):
                while await standby.fetchval(state) != "paused":  # noqa: ASYNC110 (polls the server)
                    await anyio.sleep(0.01)

    async def resume_replay(self) -> None:
        async with connected(self.url()) as standby:
            await standby.execute("SELECT pg_wal_replay_resume()")

    async def wait_caught_up(self, primary_url: URL | None = None, seconds: float = 10) -> None:
        """Wait until the standby has replayed every commit the primary made before the call.

        `primary_url`: any database of the primary (its admin URL by default).
        """
        async with connected(primary_url or self.primary_url) as primary:
            target = await primary.fetchval(_FLUSHED_POSITION)
        async with connected(self.url()) as standby:
            with anyio.move_on_after(seconds):
                while not await standby.fetchval(_REPLAYED_PAST, target):  # noqa: ASYNC110 (polls the server)
                    await anyio.sleep(0.01)
                return
            replayed, paused, receiving = await standby.fetchrow(
                "SELECT pg_last_wal_replay_lsn()::text, pg_get_wal_replay_pause_state(),"
                " (SELECT status FROM pg_stat_wal_receiver)"
            )
        raise TimeoutError(
            f"the standby replayed WAL up to {replayed}, not to {target}, in {seconds} s "
            f"(replay: {paused}; WAL receiver: {receiving or 'not running'}); "
            f"its log:\n{self._log_tail()}"
        )

    def _started(self) -> EmbeddedPostgres:
        assert self._server is not None, "needs a standby that start() started"
        return self._server

    def _log_tail(self, lines: int = 5) -> str:
        # Read now: stop() removes the data folder, the log with it.
        log = self.data_dir / "server.log"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else ""
