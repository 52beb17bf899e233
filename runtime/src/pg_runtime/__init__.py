"""The runtime of a FastAPI + SQLAlchemy 2 async service on PostgreSQL (runtime/README.md)."""
