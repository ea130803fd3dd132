"""The PostgreSQL store (``PostgresStore``): one database, a writer, a reader pool and a lookup pool.

Needs the ``postgresql`` extra (asyncpg); ``store.open_store`` says so when it is missing. See ``store.py``.
"""

from store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
