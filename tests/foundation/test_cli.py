from __future__ import annotations

import os
import subprocess
import sys


def cti(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cti", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_every_subcommand_explains_itself():
    from cti.cli import COMMANDS

    top = cti("--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        sub = cti(name, "--help")
        assert sub.returncode == 0, sub.stderr
        assert len(sub.stdout.splitlines()) >= 3


def test_bad_configuration_stops_the_command_naming_the_key():
    r = cti("check", env={"CTI_AMI__PORT": "not-a-port"})
    assert r.returncode != 0
    assert "ami.port" in r.stderr


def test_migrate_applies_then_reports_up_to_date(db_url):
    r = cti("migrate", env={"DATABASE_URL": db_url})
    assert r.returncode == 0, r.stderr
    assert "0 migration(s) applied" in r.stdout
    s = cti("migrate", "--status", env={"DATABASE_URL": db_url})
    assert s.returncode == 0 and "pending" not in s.stdout and "applied  001_events.sql" in s.stdout
