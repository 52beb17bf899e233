"""The API's own documentation (/openapi.json, /docs, /redoc): served in development only,
and then from the app itself."""

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from pg_runtime.settings import RuntimeSettings


def fastapi_app(settings: RuntimeSettings, **options: Any) -> FastAPI:
    """`FastAPI(**options)`, with the OpenAPI document and its pages if ENVIRONMENT is
    development, without them otherwise."""
    if settings.environment != "development":
        # The document maps every route and parameter for whoever asks. A deployed API's
        # clients get it from its source: `app.openapi()` builds it without any route
        # (the fuzz tests read it so).
        return FastAPI(openapi_url=None, docs_url=None, redoc_url=None, **options)
    # Swagger UI and ReDoc from fastapi-offline's copies (their version fixed by uv.lock),
    # served by the app: FastAPI's own pages load them from a CDN, without integrity
    # hashes, so whoever serves that file runs script in the page. No online validator.
    return FastAPIOffline(swagger_ui_parameters={"validatorUrl": None}, **options)
