"""The probe's one `DatabaseSessionManager`: the app's lifespan opens and closes it."""

from pg_runtime.sessions import DatabaseSessionManager

sessionmanager = DatabaseSessionManager()
