"""The revision history is one line: a single head, and every parent exists.

The harness checks it before it builds the migrated template, which a broken history makes
impossible; this test keeps it visible in the report.
"""

from pg_harness.migrations.checks import history_problems


def test_the_history_leads_to_one_head_and_every_parent_exists() -> None:
    problems = history_problems()

    assert not problems, "the revision history is broken:\n  " + "\n  ".join(problems)
