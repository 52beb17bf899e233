"""Query parameters for limit/offset paging, shared by the list endpoints."""

from typing import Annotated

from fastapi import Query

MAX_PAGE_SIZE = 100

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="rows per page")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]
