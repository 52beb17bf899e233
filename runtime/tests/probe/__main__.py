"""`python -m probe` serves the probe app as `python main.py` serves a service."""

from pg_runtime.serving import serve, settings_or_exit

from probe.migrations import migrations
from probe.settings import load_settings

# The supervisor builds no app: each worker imports probe.main.
serve(settings_or_exit(load_settings), migrations, "probe.main:app")
