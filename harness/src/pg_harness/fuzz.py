"""Fuzzing a project's API over its own OpenAPI document, with schemathesis.

A project's fuzz test builds a `Fuzz` with its app factory and its tables, and takes the
two fixtures and two tests it gives (tests/api/test_fuzz.py in the template):

- every operation through the examples, coverage and fuzzing phases: valid and invalid
  inputs to every route, one subtest per operation;
- call sequences (the stateful phase) along the OpenAPI links between operations (create
  -> read -> update -> delete), each call taking the id an earlier answer returned;
- hostile JSON, which schemathesis never sends (it writes valid JSON itself): NaN,
  Infinity, 1e400, lone surrogates, duplicate keys, deep nesting, thousands of unknown
  keys, sent raw to every operation with a JSON body (pg_harness.hostile_json).

Each test gets a database of its own (`fresh_database`, a clone of the migrated template)
and an app built for it, whose lifespan runs in schemathesis' ASGI client, on that
client's event loop thread; the schema is the document that app serves. Every response
must pass `CHECKS`: no 5xx; a status code, content type and body that the route
documents; nothing of the server's insides in the body (`NoInternalsInBody`).

The seed is fixed, so a run is repeatable (each test starts from empty tables, so ids
repeat too); a failure prints it, and `FUZZ_SEED=<n>` runs with another one.
"""

import asyncio
import json
import os
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import hypothesis
import pytest
import schemathesis
from schemathesis.python.asgi import ASGIClient, shutdown_lifespans
from sqlalchemy import MetaData
from sqlalchemy.engine import URL

from pg_harness.databases import KEPT_PREFIX, PREFIX
from pg_harness.hostile_json import send_hostile_bodies
from pg_harness.urls import asyncpg_connect_args

SEED = int(os.environ.get("FUZZ_SEED", "20250611"))

# Generated cases per operation (the coverage phase sends every case it derives from the
# schema, whatever this says), and the stateful phase's scenarios and their length.
MAX_EXAMPLES = 15
STATEFUL_SCENARIOS = 25
STATEFUL_MAX_STEPS = 6
# Seconds one request may take before it fails the test instead of hanging it.
REQUEST_TIMEOUT = 10.0

# Checks run on every response: schemathesis' built-ins named here, then ours below.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "NoInternalsInBody",
)

# What an answer must never show: SQL, the driver or ORM, a traceback, a connection string,
# a test database's name. Looked for in the decoded body (JSON strings unescaped), unless
# the request sent it: a note titled "SELECT x" is echoed back, a 422 quotes its input.
LEAK_MARKERS = (
    "SELECT ",
    "INSERT INTO",
    "UPDATE ",
    "DELETE FROM",
    "sqlalchemy",
    "asyncpg",
    "Traceback",
    'File "',
    "postgresql://",
    "postgres://",
    "postgresql+asyncpg://",
    PREFIX,
    KEPT_PREFIX,
)
# Library names appear in any case ("SQLAlchemy"); SQL keywords and tracebacks as written.
CASE_INSENSITIVE = {"sqlalchemy", "asyncpg"}


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _decoded(raw: bytes | str | None) -> str:
    """A body's text, with the strings of a JSON body unescaped (`File \\"x\\"` -> `File "x"`)."""
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return "\n".join([text, *_strings(json.loads(text))])
    except ValueError:
        return text


def _folded(text: str) -> str:
    # The app stores emails NFKC-normalised and case-folded: a full-width "SELECT" in an
    # email comes back "select".
    return unicodedata.normalize("NFKC", text).casefold()


@schemathesis.check
class NoInternalsInBody:
    """No SQL, driver, traceback, connection string or database secret in a response body."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        # From the config: the password of the database the app uses, if it has one.
        self.markers = [*LEAK_MARKERS, *(secret for secret in secrets or [] if secret)]

    def after_response(
        self,
        ctx: schemathesis.CheckContext,
        response: schemathesis.Response,
        case: schemathesis.Case[Any],
    ) -> None:
        body = _decoded(response.content)
        request = response.request
        sent_body = request.body if isinstance(request.body, bytes | str) else None
        sent = _folded(f"{request.url}\n{_decoded(sent_body)}\n{request.headers}")
        leaked = [
            marker
            for marker in self.markers
            if (
                marker.casefold() in body.casefold()
                if marker in CASE_INSENSITIVE
                else marker in body
            )
            and _folded(marker) not in sent
        ]
        if leaked:
            raise AssertionError(
                f"the response body shows the server's insides: {', '.join(map(repr, leaked))}"
            )


def _config(database_url: URL) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": REQUEST_TIMEOUT,
            # database = none: Hypothesis replays no failing example from an earlier run;
            # the seed alone decides what runs.
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": STATEFUL_MAX_STEPS},
            },
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "NoInternalsInBody": {"enabled": True, "secrets": [database_url.password]},
            },
        }
    )


Document = dict[str, Any]


def operation_id(document: Document, method: str, path: str) -> str:
    """The operationId of `method` `path` in an OpenAPI document, for a link to name."""
    return str(document["paths"][path][method]["operationId"])


@dataclass(frozen=True)
class Fuzz:
    """What the fuzz tests need of a project: `create_app(database_url)` builds its app on
    a database; `metadata` names the tables emptied between call sequences; `add_links`
    adds the OpenAPI links schemathesis cannot infer (FastAPI writes none)."""

    create_app: Callable[[URL], Any]
    metadata: MetaData
    add_links: Callable[[Document], None] = field(default=lambda document: None)

    def fixtures(self) -> tuple[Any, Any]:
        """`fuzzed_app` and `fuzz_schema`, for the test module to bind by those names."""

        @pytest.fixture
        def fuzzed_app(fresh_database: URL, anyio_backend: str) -> Iterator[Any]:
            """The app on a database of its own, its lifespan started.

            `anyio_backend`: anyio's plugin runs an async fixture (`fresh_database`) for a
            test only when the test asks for it, and these tests are sync (Hypothesis
            drives them).
            """
            app = self.create_app(fresh_database)
            try:
                # Entering the client runs the lifespan's start-up (the app's pools open) on
                # the event loop thread that serves every request schemathesis sends.
                with ASGIClient(app):
                    yield app
            finally:
                # The lifespan's shutdown closes the pools before the database is dropped.
                shutdown_lifespans()

        @pytest.fixture
        def fuzz_schema(
            fuzzed_app: Any, fresh_database: URL, request: pytest.FixtureRequest
        ) -> schemathesis.BaseSchema:
            print(f"schemathesis seed: {SEED} (FUZZ_SEED={SEED} repeats this run)")
            # schemathesis 4.32.5's from_fixture reads and renames `item._nodeid`, which
            # pytest 9.2 no longer has (it keeps `_id`): give it one. Only its reports read it.
            request.node._nodeid = request.node.nodeid
            # Built in-process, as /openapi.json would serve it: a production app serves none.
            document = json.loads(json.dumps(fuzzed_app.openapi()))
            self.add_links(document)
            schema = schemathesis.openapi.from_dict(document, config=_config(fresh_database))
            schema.app = fuzzed_app  # as from_asgi does: every call goes to this app
            return schema

        return fuzzed_app, fuzz_schema

    def run_call_sequences(self, schema: schemathesis.BaseSchema, database_url: URL) -> None:
        """The stateful phase; fails if no call to a route that takes an id succeeded."""
        answers: Counter[tuple[str, int]] = Counter()
        empty_tables = self._empty_tables

        @hypothesis.seed(SEED)
        class CallSequences(schema.as_state_machine()):  # type: ignore[misc]
            def setup(self) -> None:
                super().setup()
                # Each scenario starts from empty tables, so it depends only on its own
                # calls: Hypothesis may draw a scenario that starts like an earlier one, and
                # wants the same answers then (FlakyStrategyDefinition otherwise).
                empty_tables(database_url)

            def after_call(
                self, response: schemathesis.Response, case: schemathesis.Case[Any]
            ) -> None:
                super().after_call(response, case)
                answers[case.operation.label, response.status_code] += 1

        CallSequences.run(
            settings=hypothesis.settings(
                CallSequences.TestCase.settings,
                max_examples=STATEFUL_SCENARIOS,
                stateful_step_count=STATEFUL_MAX_STEPS,
                database=None,
            )
        )
        # Only an id an earlier answer returned gets a 2xx from a route that takes one:
        # without any, no sequence got past its first call, and the checks saw only 4xx.
        assert any("{" in label and status < 300 for label, status in answers), (
            "no call to a route that takes an id succeeded, so no link carried one: "
            + ", ".join(
                f"{label} {status} x{count}" for (label, status), count in sorted(answers.items())
            )
        )

    def send_hostile_json(self, app: Any) -> None:
        """Hostile JSON bodies to every operation of `app` that takes JSON (its lifespan
        started: the `fuzzed_app` fixture); fails on a 5xx or a refusal of more than a few KB."""
        send_hostile_bodies(app, SEED)

    def _empty_tables(self, database_url: URL) -> None:
        """Deletes every row and restarts the ids, on a connection of its own."""
        tables = ", ".join(f'"{table.name}"' for table in self.metadata.sorted_tables)

        async def empty() -> None:
            connection = await asyncpg.connect(
                **asyncpg_connect_args(database_url) | {"password": database_url.password}
            )
            try:
                await connection.execute(f"TRUNCATE {tables} RESTART IDENTITY")
            finally:
                await connection.close()

        # On a thread of its own: this thread's event loop belongs to anyio's fixtures.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, empty()).result()
