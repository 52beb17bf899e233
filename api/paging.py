"""Query parameters for limit/offset paging, shared by the list endpoints."""

from typing import Annotated

from fastapi import Query

MAX_PAGE_SIZE = 100
# The server reads and throws away every skipped row: deep pages get slower the deeper they
# are. Past this, page by a filter instead (`WHERE id > last seen id`).
MAX_OFFSET = 10_000

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="rows per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
