"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

<%!
    def _without_banner(code):
        # Drop autogenerate's "### commands auto generated ... ###" lines: read the code instead.
        # Stripped: the first line left takes the indentation this template gives it.
        kept = [line for line in code.splitlines() if not line.strip().startswith("# ###")]
        return "\n".join(kept).strip()
%>

def upgrade() -> None:
    ${_without_banner(upgrades) if upgrades else "pass"}


def downgrade() -> None:
    ${_without_banner(downgrades) if downgrades else "pass"}
