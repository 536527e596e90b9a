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


def test_check_accepts_the_compose_environment_and_names_missing_prompts(tmp_path):
    """Issue 10 (11, 4): compose's CTI_SPOOL_DIR no longer stops `cti check`; prompts Asterisk
    would not find are named."""
    sounds = tmp_path / "zh"
    (sounds / "cti").mkdir(parents=True)
    (sounds / "cti" / "night-welcome.wav").write_bytes(b"RIFF")
    env = {"CTI_SPOOL_DIR": str(tmp_path / "spool"), "CTI_PROMPTS__DIR": str(sounds)}
    r = cti("check", env=env)
    assert r.returncode == 0, r.stderr
    assert "cti/say-your-name" in r.stderr and "digits/1" in r.stderr
    assert "cti/night-welcome," not in r.stderr and "cti/night-welcome" not in r.stderr.split("missing")[-1]


def test_serve_on_a_busy_web_port_says_so_in_one_line(db_url):
    """Issue 10 (17): a web port in use ended `cti serve` in a traceback."""
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        r = cti(
            "serve",
            env={
                "DATABASE_URL": db_url,
                "CTI_AMI__SECRET": "x",
                "CTI_AMI__PORT": "1",
                "CTI_AGI__PORT": "0",
                "CTI_WEB__PORT": str(port),
                "CTI_LOG_FORMAT": "json",
            },
        )
    finally:
        busy.close()
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("Error")]
    want = f"Error: web monitor cannot listen on 127.0.0.1:{port}: already in use (set CTI_WEB__PORT)"
    assert errors == [want]
    # before listening it said which prompts Asterisk would not find (none here: no sounds dir)
    assert "WARNING prompts: directory /var/lib/asterisk/sounds/zh does not exist" in r.stderr
