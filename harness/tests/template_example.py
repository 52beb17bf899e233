"""Whether the template's example is still in the host project: its notes (which "Make it
yours" removes) and its users (which it keeps)."""

import os

import pytest
from pg_harness.project import project

_MODELS = project().root / "orm" / "models"
NEWCOMER_COPY = "NEWCOMER_COPY"

# Tests that work on the example's notes: the template's CI runs them; in a project made
# its own (README, "Make it yours") they have nothing to work on.
needs_the_example = pytest.mark.skipif(
    not (_MODELS / "note.py").exists(),
    reason="the template's example notes are gone (Make it yours): the template's CI runs this",
)
# Tests of the README's "Add a model", whose model belongs to a user. Not inside a
# newcomer's copy (NEWCOMER_COPY, harness/tests/newcomer.py): the run that made the copy
# proves it, and nested it would only repeat that run's work.
needs_the_users = pytest.mark.skipif(
    not (_MODELS / "user.py").exists() or bool(os.environ.get(NEWCOMER_COPY)),
    reason="the template's users are gone, or this run is inside a newcomer's copy",
)
