"""Test databases: see cti/db/scratch.py (a real PostgreSQL, one fresh database per test)."""

from cti.db.scratch import ScratchServer, with_database

__all__ = ["ScratchServer", "with_database"]
