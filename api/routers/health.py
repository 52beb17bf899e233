"""GET /health: is the service up, and can it reach its database?"""

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.schemas.health import Health
from orm.session import sessionmanager

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"model": Health}})
async def read_health(response: Response) -> Health:
    """200 when the database answers a query, 503 when it does not."""
    try:
        async with sessionmanager.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        response.status_code = 503
        return Health(status="unavailable", database="unreachable")
    return Health(status="ok", database="reachable")
