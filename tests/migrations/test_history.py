"""The revision history is one line: a single head, and every parent exists."""

from alembic.script import ScriptDirectory

from tests.migrations.conftest import load_history


def describe_heads(script: ScriptDirectory, heads: tuple[str, ...]) -> str:
    return "\n  ".join(
        f"{head} ({revision.doc!r}, {revision.path})"
        for head in heads
        if (revision := script.get_revision(head)) is not None
    )


def test_every_down_revision_exists() -> None:
    _script, problems = load_history()

    assert not problems, "the revision history is broken:\n  " + "\n  ".join(problems)


def test_there_is_exactly_one_head() -> None:
    script, _problems = load_history()
    heads = tuple(script.get_heads())

    assert len(heads) == 1, (
        f"{len(heads)} heads; two branches were added in parallel. Merge them with "
        "`alembic merge heads -m 'merge'` (or rebase one onto the other):\n  "
        + describe_heads(script, heads)
    )
