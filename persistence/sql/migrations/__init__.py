"""Alembic migration scripts of the SQL schema (run by `persistence.sql.schema`, no alembic.ini)."""
