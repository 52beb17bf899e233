"""The ASGI application (`uvicorn main:app`); `python main.py` serves it (pg_runtime.serving)."""

from pg_runtime.serving import serve, settings_or_exit, worker_app

from app.factory import create_app
from app.settings import load_settings
from orm.migrations import migrations

if __name__ == "__main__":
    # The supervisor builds no app: each worker imports this module as `main`.
    serve(settings_or_exit(load_settings), migrations, "main:app")
else:
    app = worker_app(settings_or_exit(load_settings), create_app)
