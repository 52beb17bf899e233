"""A route of the observability tests' own, so that they do not lean on the example's."""

from fastapi import FastAPI, HTTPException
from in_process import settings_for
from opentelemetry.sdk.trace import TracerProvider
from probe.dependencies import ReadSession
from probe.factory import create_app
from sqlalchemy import text
from sqlalchemy.engine import URL

ITEM = "/items/{item_id}"
# One statement with a parameter: its value must show in no log line and no span.
LOOKUP = text("SELECT relname FROM pg_class WHERE oid = :item_id")


def app_with_items(
    database_url: URL, tracer_provider: TracerProvider | None = None, **settings: object
) -> FastAPI:
    """The app, plus GET /items/{item_id}: 404 unless a relation has that oid."""
    app = create_app(settings_for(database_url, **settings), tracer_provider)

    @app.get(ITEM)
    async def read_item(item_id: int, session: ReadSession) -> dict[str, str]:
        name = await session.scalar(LOOKUP, {"item_id": item_id})
        if name is None:
            raise HTTPException(404, "not found")
        return {"name": name}

    return app
