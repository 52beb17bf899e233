"""The revision history is one line: a single head, and every parent exists.

The harness runs the same check before it builds the migrated template (tests/conftest.py),
which a broken history would make impossible; these tests keep it visible in the report.
"""

from tests.migrations.checks import history_problems


def test_the_history_leads_to_one_head_and_every_parent_exists() -> None:
    problems = history_problems()

    assert not problems, "the revision history is broken:\n  " + "\n  ".join(problems)
