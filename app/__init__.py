"""The service. Its name, here once: the OpenAPI title."""

NAME = "FastAPI + SQLAlchemy template"
