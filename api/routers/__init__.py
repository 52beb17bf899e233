"""Every router the app serves, in the order OpenAPI lists them: add yours here."""

from fastapi import APIRouter

from api.routers import health, notes, users

ROUTERS: list[APIRouter] = [health.router, users.router, notes.router]
