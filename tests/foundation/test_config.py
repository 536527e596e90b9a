from __future__ import annotations

from pathlib import Path

import pytest

from cti.config import ConfigError, load_settings
from cti.policy import load_policy


def test_defaults_are_a_chinese_call_center():
    s = load_settings(env={})
    assert s.timezone == "Asia/Shanghai"
    assert s.ami.port == 5038 and s.agi.port == 4573
    assert s.database_url is None  # → embedded PostgreSQL


def test_file_then_environment_override(tmp_path: Path):
    f = tmp_path / "cti.toml"
    f.write_text('timezone = "Asia/Urumqi"\n[ami]\nhost = "10.1.1.1"\nport = 5039\nsecret = "from-file"\n')
    s = load_settings(f, env={"CTI_AMI__PORT": "6000", "DATABASE_URL": "postgresql://db/cti"})
    assert (s.timezone, s.ami.host, s.ami.port) == ("Asia/Urumqi", "10.1.1.1", 6000)
    assert s.database_url == "postgresql://db/cti"
    assert "from-file" not in repr(s), "secrets must not show in reprs or logs"
    assert s.ami.secret.get_secret_value() == "from-file"


@pytest.mark.parametrize(
    ("env", "key", "problem"),
    [
        ({"CTI_AMI__PORT": "70000"}, "ami.port", "less than or equal to 65535"),
        ({"CTI_TIMEZONE": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"CTI_LOG_FORMAT": "xml"}, "log_format", "match pattern"),
        ({"CTI_AMI__PINGS": "1"}, "ami.pings", "Extra inputs"),
    ],
)
def test_bad_settings_name_the_key_and_the_problem(env, key, problem):
    with pytest.raises(ConfigError) as e:
        load_settings(env=env)
    assert key in str(e.value) and problem in str(e.value)


def test_broken_toml_and_missing_file_are_clear(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text("[ami\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(f, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_shipped_policy_carries_the_spec_figures():
    p = load_policy()
    assert p.ring.max_rings == 2 and p.ring.cycle_s == 5.0 and p.ring.agent_timeout_s == 10.0
    # China cadence: ring 2 sounds from 5 s to 6 s; the third ring would start at 10 s
    assert p.ring.rings_at(5.5) == 2 and p.ring.rings_at(9.99) == 2 and p.ring.rings_at(10.0) == 3
    assert str(p.fines["missed_call"].agent) == "10.00" and str(p.fines["missed_call"].supervisor) == "50.00"
    assert [(s.start.hour, s.end.hour) for s in p.shifts] == [(8, 17), (10, 18)]
    assert p.service_hours.start.hour == 6 and p.service_hours.end.hour == 22


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"ring.max_rings": 0}, "ring.max_rings"),
        ({"fines.late.agent": "-5"}, "fines.late.agent"),
        ({"service_hours.start": "25:00"}, "service_hours.start"),
        ({"peak.exit_waiting_callers": 50}, "peak"),
        ({"callbacks.backoff_s": []}, "callbacks.backoff_s"),
    ],
)
def test_bad_policy_values_are_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        load_policy(overrides=override)
    assert key in str(e.value)


async def test_policy_rows_in_the_database_override_the_file(db):
    from cti.policy import load_policy_from_db

    await db.execute(
        "INSERT INTO policy_values (key, value, updated_by) VALUES ('ring.max_rings', '3', 'test')"
    )
    p = await load_policy_from_db(db)
    assert p.ring.max_rings == 3 and p.ring.agent_timeout_s == 15.0


def test_trunk_endpoints_from_the_environment_and_bad_names() -> None:
    """The CDR sweep's trunk endpoints (decision 0410): a comma list in the environment."""
    assert load_settings(env={}).ami.trunk_endpoints == ["trunk"]
    got = load_settings(env={"CTI_AMI__TRUNK_ENDPOINTS": "trunk, carrier_b"}).ami.trunk_endpoints
    assert got == ["trunk", "carrier_b"]
    for bad in ("", "a b", "trunk,%"):
        with pytest.raises(ConfigError, match=r"ami\.trunk_endpoints"):
            load_settings(env={"CTI_AMI__TRUNK_ENDPOINTS": bad})


def test_the_spool_directory_compose_sets_for_the_degraded_script_is_a_setting(tmp_path: Path):
    """Issue 10 (11): CTI_SPOOL_DIR (compose, for route_agi.py) stopped cti with `Extra inputs`."""
    s = load_settings(env={"CTI_SPOOL_DIR": "/var/lib/cti/spool", "CTI_DATA_DIR": str(tmp_path)})
    assert s.spool == Path("/var/lib/cti/spool")
    assert load_settings(env={"CTI_DATA_DIR": str(tmp_path)}).spool == tmp_path / "spool"
