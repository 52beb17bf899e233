"""Every router the app serves, in the order OpenAPI lists them: add yours here.

The health probes (/health, /health/live, /health/ready) come from the runtime."""

from fastapi import APIRouter

from api.routers import notes, users

ROUTERS: list[APIRouter] = [users.router, notes.router]
