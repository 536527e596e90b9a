"""Moved to tests/fakes.py (one fakes module for all tests); kept so older imports still work."""

from tests.fakes import ListSink

__all__ = ["ListSink"]
