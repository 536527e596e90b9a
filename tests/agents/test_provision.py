"""Provisioning round trip as an operator runs it (`cti agents ...` subprocesses) against PostgreSQL,
and the PJSIP realtime rows Asterisk would read: exact table and column names of Asterisk's own
alembic migrations (contrib/ast-db-manage/config/versions)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg

from tests.cliproc import run_cti

# Column names as Asterisk's migrations create them (43956d550a44_add_tables_for_pjsip.py and
# 1ac563b350a8 for send_connected_line); res_config_pgsql asks for exactly these.
ASTERISK_COLUMNS = {
    "ps_endpoints": {
        "id", "transport", "aors", "auth", "context", "disallow", "allow", "direct_media",
        "force_rport", "identify_by", "rewrite_contact", "rtp_symmetric", "send_pai",
        "send_connected_line", "callerid", "language",
    },
    "ps_auths": {"id", "auth_type", "md5_cred", "password", "realm", "username"},
    "ps_aors": {"id", "max_contacts", "remove_existing", "qualify_frequency"},
}  # fmt: skip


async def cti(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await run_cti(env, "agents", *args)


def _password(out: str, agent: str) -> str:
    line = next(x for x in out.splitlines() if x.startswith(f"{agent}: SIP user {agent}, password "))
    return line.split("password ")[1].split(" ")[0]


def _csv_100() -> tuple[str, dict[int, str]]:
    """100 agents; 7 bad rows (line number -> the reason's key words), the rest good."""
    rows = ["id,name,group,supervisor,did"]
    rows.append("sup1,王组长,sales,,4008000001")  # line 2: a supervisor the others name
    for i in range(2, 101):
        rows.append(f"imp{i:03d},坐席{i},sales,sup1,40081{i:05d}")
    bad = {
        5: ("imp004", "imp 004,坐席4,sales,sup1,4008100004", "id"),
        9: ("imp008", "imp008,,sales,sup1,4008100008", "name is missing"),
        14: ("imp013", "imp013,坐席13,sales,sup1,40O8100013", "did is not a phone number"),
        20: ("imp019", "imp019,坐席19,sales,nobody,4008100019", "supervisor nobody"),
        31: ("imp030", "imp002,坐席30,sales,sup1,4008100030", "also on line 3"),
        41: ("imp040", "imp040,坐席40,sales,sup1,4008000001", "did is already used"),
        51: ("imp050", "imp050,坐席50,sales,sup1,4008100050,extra", "more fields"),
    }
    for line, (_, text, _) in bad.items():
        rows[line - 1] = text
    return "\n".join(rows) + "\n", {line: why for line, (_, _, why) in bad.items()}


async def test_provisioning_round_trip(db_url: str, pool: asyncpg.Pool, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url, "CTI_DATA_DIR": str(tmp_path)}

    # add: the password is shown once and only its digest is stored
    rc, out, err = await cti(
        env, "add", "agent7", "--name", "李四", "--group", "sales", "--did", "4008007777"
    )
    assert rc == 0, err
    pw = _password(out, "agent7")
    assert len(pw) == 16
    auth = await pool.fetchrow("SELECT * FROM ps_auths WHERE id = 'agent7'")
    assert auth["auth_type"] == "md5" and auth["username"] == "agent7" and auth["password"] is None
    assert auth["md5_cred"] == hashlib.md5(f"agent7:{auth['realm']}:{pw}".encode()).hexdigest()
    ep = await pool.fetchrow("SELECT * FROM ps_endpoints WHERE id = 'agent7'")
    assert (ep["auth"], ep["aors"], ep["context"], ep["transport"]) == (
        "agent7",
        "agent7",
        "agents",
        "transport-udp",
    )
    assert await pool.fetchval("SELECT max_contacts FROM ps_aors WHERE id = 'agent7'") == 1
    a = await pool.fetchrow("SELECT * FROM agents WHERE id = 'agent7'")
    assert (a["name"], a["group_name"], a["did"], a["interface"]) == (
        "李四",
        "sales",
        "4008007777",
        "PJSIP/agent7",
    )
    assert pw not in str(dict(a)) and pw not in str(dict(auth))

    # a second add of the same id, or someone else's DID, is refused without touching the first
    rc, _, err = await cti(env, "add", "agent7", "--name", "x")
    assert rc == 1 and "agent7 already exists" in err
    rc, _, err = await cti(env, "add", "agent8", "--name", "x", "--did", "4008007777")
    assert rc == 1 and "already agent agent7's" in err
    rc, _, err = await cti(env, "add", "bad id", "--name", "x")
    assert rc == 2 and "is not valid" in err and "Traceback" not in err

    # import 100 rows with bad ones: each reported by line and reason, the good 93 added
    text, bad = _csv_100()
    f = tmp_path / "agents.csv"
    f.write_text(text, encoding="utf-8")
    pwfile = tmp_path / "pw.csv"
    rc, out, err = await cti(env, "import", str(f), "--passwords", str(pwfile))
    assert rc == 1
    reported = {int(x.split(":")[0].split()[1]): x for x in err.splitlines() if x.startswith("line ")}
    assert sorted(reported) == sorted(bad)
    for line, why in bad.items():
        assert why in reported[line], (line, reported[line])
    assert "added 93, rejected 7" in err
    assert oct(pwfile.stat().st_mode & 0o777) == "0o600"
    pws = dict(x.split(",") for x in pwfile.read_text().splitlines()[1:])
    assert len(pws) == 93 and "sup1" in pws and "imp004" not in pws
    assert await pool.fetchval("SELECT count(*) FROM agents WHERE id LIKE 'imp%' OR id = 'sup1'") == 93
    assert await pool.fetchval("SELECT count(*) FROM ps_endpoints WHERE id LIKE 'imp%' OR id = 'sup1'") == 93
    assert await pool.fetchval("SELECT supervisor FROM agents WHERE id = 'imp099'") == "sup1"
    # the same file again: every row already exists, nothing changes
    rc, _, err = await cti(env, "import", str(f))
    assert rc == 1 and "added 0, rejected 100" in err
    # a file that is not a roster at all: one line, exit 2
    (tmp_path / "x.csv").write_text("foo,bar\n1,2\n")
    rc, _, err = await cti(env, "import", str(tmp_path / "x.csv"))
    assert rc == 2 and "id and name" in err and "Traceback" not in err

    # list shows the record with the DID masked
    rc, out, _ = await cti(env, "list")
    line = next(x for x in out.splitlines() if x.startswith("agent7"))
    assert "4008007777" not in line and "PJSIP/agent7" in line and "phone ok" in line

    # disable: Asterisk has nothing to read for agent7 any more; the agent row stays
    rc, out, err = await cti(env, "disable", "agent7")
    assert rc == 0, err
    for t in ASTERISK_COLUMNS:
        assert await pool.fetchval(f"SELECT count(*) FROM {t} WHERE id = 'agent7'") == 0
    assert await pool.fetchval("SELECT active FROM agents WHERE id = 'agent7'") is False
    rc, out, _ = await cti(env, "list")
    assert "agent7" not in out
    rc, _, err = await cti(env, "disable", "agent7")
    assert rc == 1 and "already disabled" in err

    # a logged-in agent is not disabled under them
    await pool.execute(
        """INSERT INTO agent_logins (agent, queues, penalty, login_at, login_via)
           VALUES ('imp002', '{sales}', 0, now(), 'cli')"""
    )
    rc, _, err = await cti(env, "disable", "imp002")
    assert rc == 1 and "logged in" in err

    # reset-password: a new password, the old digest replaced, the phone back
    rc, out, err = await cti(env, "reset-password", "agent7")
    assert rc == 0, err
    pw2 = _password(out, "agent7")
    assert pw2 != pw
    cred = await pool.fetchval("SELECT md5_cred FROM ps_auths WHERE id = 'agent7'")
    assert cred == hashlib.md5(f"agent7:cti:{pw2}".encode()).hexdigest()
    assert await pool.fetchval("SELECT active FROM agents WHERE id = 'agent7'") is True
    rc, _, err = await cti(env, "reset-password", "ghost")
    assert rc == 1 and "no agent ghost" in err


async def test_realtime_tables_have_asterisks_exact_columns(pool: asyncpg.Pool) -> None:
    """Every column we write exists under Asterisk's name, and the rows we write use only those."""
    from cti.agents.provision import AgentRecord, pjsip_rows

    rows = pjsip_rows(AgentRecord("agent9", "王五"), "secret")
    long = pjsip_rows(AgentRecord("a" * 32, "很长的名字" * 10), "secret")["ps_endpoints"]["callerid"]
    assert len(long) <= 40 and long.endswith(f"<{'a' * 32}>")  # ps_endpoints.callerid is varchar(40)
    for table, expected in ASTERISK_COLUMNS.items():
        cols = {
            r["column_name"]
            for r in await pool.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
            )
        }
        assert cols == expected, table
        assert set(rows[table]) <= expected, table
    udt = "SELECT udt_name FROM information_schema.columns WHERE table_name = $1 AND column_name = $2"
    assert await pool.fetchval(udt, "ps_auths", "auth_type") == "pjsip_auth_type_values"
    assert await pool.fetchval(udt, "ps_aors", "remove_existing") == "yesno_values"


async def test_the_simulator_takes_its_phones_from_the_provisioned_agents(pool: asyncpg.Pool) -> None:
    """Decision 0306 in the simulator: a provisioned agent has a phone, a disabled one is refused."""
    from datetime import UTC, datetime

    from cti.agents.provision import AgentRecord, add_agent, disable_agent
    from cti.sim import Simulator
    from cti.sim.scenario import Scenario

    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    async with pool.acquire() as conn:
        await add_agent(conn, AgentRecord("p1", "甲", did="4008006001"), now)
        await add_agent(conn, AgentRecord("p2", "乙"), now)
        await disable_agent(conn, "p2", now)
        sim = Simulator(Scenario())
        sim.add_agent("p2", "乙")  # a phone that registered before the agent was disabled
        assert await sim.load_agents(conn) == 1
    assert sim.core.endpoints["p1"].registered and not sim.core.endpoints["p2"].registered
    assert "4008006001" in sim.pbx.own_dids  # the carrier loops a line test of p1's DID back
