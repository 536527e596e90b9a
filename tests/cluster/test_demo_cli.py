"""`cti demo --processes N`: bad combinations are refused in one line (exit 2) before anything runs."""

from __future__ import annotations

from click.testing import CliRunner

from cti.cli import main


def test_a_leader_kill_without_a_second_process_is_refused():
    r = CliRunner().invoke(main, ["demo", "--kill-leader-after-ad", "60"])
    assert r.exit_code == 2
    assert "--kill-leader-after-ad needs --processes 2 or more" in r.output
    assert "Traceback" not in r.output


def test_processes_out_of_range_is_refused():
    r = CliRunner().invoke(main, ["demo", "--processes", "0"])
    assert r.exit_code == 2 and "--processes" in r.output
