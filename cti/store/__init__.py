"""The append-only event log: every fact is an event row in PostgreSQL first."""
