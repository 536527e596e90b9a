"""PostgreSQL: where the database is (DATABASE_URL or an embedded server) and its migrations."""
