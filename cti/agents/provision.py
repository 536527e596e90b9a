"""Provisioning: one record per agent (id, name, group, supervisor, personal DID, SIP endpoint) and the
PJSIP rows Asterisk reads through its realtime driver (db/080, decision 0306).

A new agent (or a reset) gets a generated SIP password that is returned once and never stored: the
`ps_auths` row holds `md5_cred` = md5(username:realm:password), which PJSIP's digest check uses in
place of the password (auth_type md5). Disabling deletes the three PJSIP rows, so the phone can
neither register nor be dialed, with no config edit or reload; the `agents` row stays (history
refers to it) with `active = false`.

`validate` and `pjsip_rows` are pure; the async functions take an asyncpg connection.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The realm our auth rows challenge with. It is part of md5_cred, so it is fixed: changing it would
# invalidate every stored credential.
SIP_REALM = "cti"
PASSWORD_LENGTH = 16
# no 0/O, 1/l/I: an agent types this into a desk phone once
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
# ps_auths.username and ps_endpoints.callerid are varchar(40): `name <id>` must fit in the latter
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_CALLERID_MAX = 40
_DID = re.compile(r"^\+?[0-9]{3,20}$")
_GROUP = re.compile(r"^[\w.-]{1,64}$")
CSV_COLUMNS = ("id", "name", "group", "supervisor", "did")

# The endpoint settings every agent phone gets (was [agent-template] in pjsip.conf).
ENDPOINT_DEFAULTS: dict[str, str] = {
    "transport": "transport-udp",
    "context": "agents",
    "disallow": "all",
    "allow": "alaw,ulaw",
    "direct_media": "no",
    "rtp_symmetric": "yes",
    "force_rport": "yes",
    "rewrite_contact": "yes",
    "identify_by": "username,auth_username",
    # the phone shows the connected line, which the dialplan masks (CONNECTEDLINE + interception)
    "send_pai": "yes",
    "send_connected_line": "yes",
    "language": "zh",
}
AOR_DEFAULTS: dict[str, Any] = {"max_contacts": 1, "remove_existing": "yes", "qualify_frequency": 30}


class ProvisionError(ValueError):
    """A record that cannot be provisioned; the message says which field and why."""


@dataclass(frozen=True)
class AgentRecord:
    id: str
    name: str
    group: str = "default"
    supervisor: str | None = None
    did: str | None = None

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.id}"


@dataclass
class ImportResult:
    added: list[tuple[str, str]] = field(default_factory=list)  # (agent id, password shown once)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (CSV line number, reason)


def validate(raw: Mapping[str, str | None]) -> AgentRecord:
    """An AgentRecord from user input, or ProvisionError naming the first bad field."""
    aid = (raw.get("id") or "").strip()
    if not aid:
        raise ProvisionError("id is missing")
    if not _ID.match(aid):
        raise ProvisionError(f"id {aid[:50]!r} is not valid (1-32 letters, digits, _ . -)")
    name = (raw.get("name") or "").strip()
    if not name:
        raise ProvisionError("name is missing")
    if len(name) > 64:
        raise ProvisionError("name is longer than 64 characters")
    group = (raw.get("group") or "").strip() or "default"
    if not _GROUP.match(group):
        raise ProvisionError(f"group {group[:50]!r} is not valid (1-64 letters, digits, _ . -)")
    sup = (raw.get("supervisor") or "").strip() or None
    if sup is not None and not _ID.match(sup):
        raise ProvisionError(f"supervisor {sup[:50]!r} is not an agent id")
    if sup == aid:
        raise ProvisionError("an agent cannot be their own supervisor")
    did = (raw.get("did") or "").strip().replace(" ", "").replace("-", "") or None
    if did is not None and not _DID.match(did):
        raise ProvisionError("did is not a phone number (3-20 digits, optional +)")
    return AgentRecord(aid, name, group, sup, did)


def generate_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))


def md5_cred(username: str, password: str, realm: str = SIP_REALM) -> str:
    """HA1 of RFC 2617 digest, what PJSIP's md5_cred holds. MD5 here is the protocol's, not our choice."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def pjsip_rows(rec: AgentRecord, password: str) -> dict[str, dict[str, Any]]:
    """The rows Asterisk reads for this agent, by table (column names as Asterisk's migrations)."""
    return {
        "ps_endpoints": {
            "id": rec.id,
            **ENDPOINT_DEFAULTS,
            "auth": rec.id,
            "aors": rec.id,
            # name <id>: the phone and CDRs show who it is; the dialplan masks customers, not agents
            "callerid": f"{rec.name[: _CALLERID_MAX - len(rec.id) - 3]} <{rec.id}>",
        },
        "ps_auths": {
            "id": rec.id,
            "auth_type": "md5",
            "username": rec.id,
            "realm": SIP_REALM,
            "md5_cred": md5_cred(rec.id, password),
        },
        "ps_aors": {"id": rec.id, **AOR_DEFAULTS},
    }


async def _write_pjsip(conn: Any, rows: Mapping[str, Mapping[str, Any]]) -> None:
    for table in ("ps_aors", "ps_auths", "ps_endpoints"):
        row = rows[table]
        cols = list(row)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "id")
        marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        await conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {sets}",
            *row.values(),
        )


async def _delete_pjsip(conn: Any, agent_id: str) -> None:
    for table in ("ps_endpoints", "ps_auths", "ps_aors"):
        await conn.execute(f"DELETE FROM {table} WHERE id = $1", agent_id)


async def _check_new(conn: Any, rec: AgentRecord) -> None:
    if await conn.fetchval("SELECT 1 FROM agents WHERE id = $1", rec.id):
        raise ProvisionError(f"agent {rec.id} already exists")
    if rec.did is not None:
        other = await conn.fetchval("SELECT id FROM agents WHERE did = $1", rec.did)
        if other is not None:
            raise ProvisionError(f"did is already agent {other}'s")
    if rec.supervisor is not None and not await conn.fetchval(
        "SELECT 1 FROM agents WHERE id = $1", rec.supervisor
    ):
        raise ProvisionError(f"supervisor {rec.supervisor} is not a provisioned agent")


async def _insert(conn: Any, rec: AgentRecord, now: datetime, *, supervisor: bool = True) -> str:
    password = generate_password()
    await conn.execute(
        """INSERT INTO agents (id, name, interface, did, group_name, supervisor, sip_password_set_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        rec.id, rec.name, rec.interface, rec.did, rec.group, rec.supervisor if supervisor else None, now,
    )  # fmt: skip
    await _write_pjsip(conn, pjsip_rows(rec, password))
    return password


async def add_agent(conn: Any, rec: AgentRecord, now: datetime) -> str:
    """Provision one agent; returns the SIP password (shown once). ProvisionError if it clashes."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE")  # id/DID checks hold
        await _check_new(conn, rec)
        return await _insert(conn, rec, now)


async def import_csv(conn: Any, text: str, now: datetime) -> ImportResult:
    """Add every good row of a CSV (header: id,name[,group,supervisor,did]); bad rows are reported by
    line number and reason and the good ones are kept. A supervisor may be a row of the same file."""
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel's UTF-8 BOM
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "id" not in header or "name" not in header:
        raise ProvisionError(
            "the CSV header must name the columns id and name (optional: group, supervisor, did)"
        )
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise ProvisionError(f"unknown CSV column(s): {', '.join(unknown)} (known: {', '.join(CSV_COLUMNS)})")
    reader.fieldnames = header
    async with conn.transaction():
        await conn.execute("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE")
        existing = {r["id"]: r["did"] for r in await conn.fetch("SELECT id, did FROM agents")}
        used_dids = {d for d in existing.values() if d}
        good: dict[str, tuple[int, AgentRecord]] = {}
        for row in reader:
            line = reader.line_num
            if None in row:  # more fields than the header names
                result.errors.append((line, "more fields than the header has columns"))
                continue
            try:
                rec = validate(row)
            except ProvisionError as e:
                result.errors.append((line, str(e)))
                continue
            if rec.id in existing:
                result.errors.append((line, f"agent {rec.id} already exists"))
            elif rec.id in good:
                result.errors.append((line, f"agent {rec.id} is also on line {good[rec.id][0]}"))
            elif rec.did is not None and rec.did in used_dids:
                result.errors.append((line, "did is already used by another agent"))
            else:
                good[rec.id] = (line, rec)
                if rec.did:
                    used_dids.add(rec.did)
        # a supervisor must exist or be a good row; dropping a row can orphan another: repeat
        changed = True
        while changed:
            changed = False
            for aid, (line, rec) in list(good.items()):
                if rec.supervisor and rec.supervisor not in existing and rec.supervisor not in good:
                    result.errors.append((line, f"supervisor {rec.supervisor} is not a provisioned agent"))
                    del good[aid]
                    changed = True
        for _, rec in good.values():
            result.added.append((rec.id, await _insert(conn, rec, now, supervisor=False)))
        for _, rec in good.values():
            if rec.supervisor:
                await conn.execute("UPDATE agents SET supervisor = $2 WHERE id = $1", rec.id, rec.supervisor)
    result.errors.sort()
    return result


async def disable_agent(conn: Any, agent_id: str, now: datetime) -> None:
    """Take the agent's phone off Asterisk (PJSIP rows deleted) and mark them inactive. Refused while
    they are logged in: log them out first, so no queue keeps ringing a phone that cannot answer."""
    async with conn.transaction():
        r = await conn.fetchrow("SELECT active FROM agents WHERE id = $1 FOR UPDATE", agent_id)
        if r is None:
            raise ProvisionError(f"no agent {agent_id}")
        if not r["active"]:
            raise ProvisionError(f"agent {agent_id} is already disabled")
        if await conn.fetchval("SELECT 1 FROM agent_logins WHERE agent = $1 AND logout_at IS NULL", agent_id):
            raise ProvisionError(f"agent {agent_id} is logged in: log them out first")
        await conn.execute("UPDATE agents SET active = false, disabled_at = $2 WHERE id = $1", agent_id, now)
        await _delete_pjsip(conn, agent_id)


async def reset_password(conn: Any, agent_id: str, now: datetime) -> str:
    """A new SIP password (returned once); re-enables a disabled agent's phone."""
    async with conn.transaction():
        r = await conn.fetchrow(
            "SELECT id, name, group_name, supervisor, did FROM agents WHERE id = $1 FOR UPDATE", agent_id
        )
        if r is None:
            raise ProvisionError(f"no agent {agent_id}")
        rec = AgentRecord(r["id"], r["name"], r["group_name"], r["supervisor"], r["did"])
        password = generate_password()
        await _write_pjsip(conn, pjsip_rows(rec, password))
        await conn.execute(
            "UPDATE agents SET sip_password_set_at = $2, active = true, disabled_at = NULL WHERE id = $1",
            agent_id, now,
        )  # fmt: skip
        return password


async def list_agents(conn: Any, *, include_disabled: bool = False) -> Sequence[Any]:
    """Agents with whether Asterisk can see their phone (a ps_endpoints row exists)."""
    return list(
        await conn.fetch(
            """SELECT a.id, a.name, a.group_name, a.supervisor, a.did, a.interface, a.active,
                      a.sip_password_set_at, e.id IS NOT NULL AS phone
               FROM agents a LEFT JOIN ps_endpoints e ON e.id = a.id
               WHERE $1 OR a.active ORDER BY a.group_name, a.id""",
            include_disabled,
        )
    )
