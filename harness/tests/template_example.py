"""Whether the template's example (users and notes) is still in the host project."""

import pytest
from pg_harness.project import project

# Tests that work on the example's tables and files: the template's CI runs them; in a
# project made its own (README, "Make it yours") they have nothing to work on.
needs_the_example = pytest.mark.skipif(
    not (project().root / "orm" / "models" / "note.py").exists(),
    reason="the template's example is gone (Make it yours): the template's CI runs this",
)
