"""The probe's ASGI application (`uvicorn probe.main:app`), as each worker imports it."""

from pg_runtime.serving import settings_or_exit, worker_app

from probe.factory import create_app
from probe.settings import load_settings

app = worker_app(settings_or_exit(load_settings), create_app)
