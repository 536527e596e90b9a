"""AgentService: login, logout, pause with a reason, unpause, and restore after a reconnect.

Every request is decided (cti.agents.decide), applied over AMI, stored in `agent_logins` and
recorded as an event (`agent_login` / `agent_logout` / `agent_pause` / `agent_unpause`, payload
`decision: accepted|refused` with the code and message), refused requests included.

AMI frames follow capture 17: QueueAdd with Queue, Interface, Penalty, MemberName, StateInterface;
then `PJSIPQualify` `Endpoint: agent1`, because a contact that just registered is UNAVAILABLE
(QueueMemberAdded Status 5) until its first OPTIONS round trip, up to qualify_frequency = 30 s later
(capture 19). QueuePause carries `Reason` (capture 07). Asterisk forgets dynamic members on restart
(capture 17): `restore()` puts every open session back, paused as it was, from the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from cti import defaults
from cti.agents import repo
from cti.agents.decide import (
    AgentInfo,
    Decision,
    Session,
    decide_login,
    decide_logout,
    decide_pause,
    decide_unpause,
)
from cti.awaitables import maybe_await
from cti.clock import Clock
from cti.policy import Policy
from cti.store.events import Event
from cti.store.sink import EventSink, append_or_log

if TYPE_CHECKING:
    from cti.state.live import LiveState

log = structlog.get_logger(__name__)

AmiAction = Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, Any]]]
VIAS = ("phone", "cli", "panel", "api")


def _ok(reply: Mapping[str, Any] | None, *benign: str) -> tuple[bool, str]:
    """(ok, message) of an AMI reply; `benign` error texts count as done (e.g. "Already there")."""
    if reply is None:
        return True, ""
    msg = str(reply.get("Message") or "")
    if str(reply.get("Response")) == "Success":
        return True, msg
    return any(b in msg for b in benign), msg


class AgentService:
    def __init__(
        self,
        pool: Any,
        *,
        policy: Policy,
        clock: Clock,
        events: EventSink,
        ami_action: AmiAction,
        in_peak: Callable[[], bool | Awaitable[bool]] = lambda: False,
        tz: ZoneInfo = ZoneInfo(defaults.TIMEZONE),
        default_queues: tuple[str, ...] = (defaults.QUEUE,),
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._clock = clock
        self._events = events
        self._ami = _never_raises(ami_action)
        self._in_peak = in_peak
        self._tz = tz
        self.default_queues = default_queues
        # told of every decision, whichever way it came (phone, CLI, panel): the desk updates the
        # agent's panel and raises the wallboard's alarms (a 3rd break refused at the phone too)
        self.decided: list[Callable[[str, Decision], None]] = []

    # ---- queries ------------------------------------------------------------------------
    async def logged_in(self) -> list[Session]:
        async with self._pool.acquire() as conn:
            return await repo.open_sessions(conn)

    async def session(self, agent_id: str) -> Session | None:
        async with self._pool.acquire() as conn:
            return await repo.open_session(conn, agent_id)

    # ---- requests -----------------------------------------------------------------------
    async def login(
        self, agent_id: str, *, via: str = "api", queues: Iterable[str] | None = None, penalty: int = 0
    ) -> Decision:
        _check_via(via)
        qs = tuple(queues) if queues is not None else self.default_queues
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await repo.get_agent(conn, agent_id)
            if agent is not None:
                await repo.lock_group(conn, agent.group)
            session = await repo.open_session(conn, agent_id)
            d = decide_login(agent, session, agent_id)
            if d.allowed:
                assert agent is not None
                if session is not None:  # re-apply what the database says, not what was asked now
                    qs, penalty = session.queues, session.penalty
                err = await self._join(agent, qs, penalty, session)
                if err:
                    d = Decision("login", False, "pbx_error", f"{agent_id}: the PBX refused: {err}")
                elif session is None:
                    await repo.insert_session(conn, agent_id, qs, penalty, now, via)
        if d.allowed and agent is not None:
            await self._qualify(agent)
        await self._record(d, agent_id, via, now, queues=list(qs))
        return d

    async def logout(self, agent_id: str, *, via: str = "api") -> Decision:
        _check_via(via)
        now = self._clock.now()
        in_peak = bool(await maybe_await(self._in_peak()))
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await repo.get_agent(conn, agent_id)
            session = await repo.open_session(conn, agent_id)
            d = decide_logout(session, agent_id, in_peak=in_peak)
            if d.allowed and session is not None and agent is not None:
                for q in session.queues:
                    reply = await self._ami("QueueRemove", {"Queue": q, "Interface": agent.interface})
                    ok, msg = _ok(reply, "Not there")
                    if not ok:
                        d = Decision("logout", False, "pbx_error", f"{agent_id}: the PBX refused: {msg}")
                        break
                else:
                    await repo.close_session(conn, session.id, now, via)
        await self._record(d, agent_id, via, now)
        return d

    async def pause(self, agent_id: str, reason: str | None, *, via: str = "api") -> Decision:
        _check_via(via)
        now = self._clock.now()
        in_peak = bool(await maybe_await(self._in_peak()))
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await repo.get_agent(conn, agent_id)
            if agent is not None:
                await repo.lock_group(conn, agent.group)
            session = await repo.open_session(conn, agent_id)
            group = await repo.open_sessions(conn, session.group) if session is not None else []
            d = decide_pause(
                session,
                agent_id,
                reason,
                group_sessions=group,
                policy=self._policy.breaks,
                in_peak=in_peak,
                now=now,
                tz=self._tz,
            )
            if d.allowed and session is not None and agent is not None and d.reason is not None:
                reply = await self._ami(
                    "QueuePause", {"Interface": agent.interface, "Paused": "true", "Reason": d.reason}
                )
                ok, msg = _ok(reply)
                if ok:
                    await repo.set_pause(conn, session.id, d.reason, now, d.pause_until)
                else:
                    d = Decision("pause", False, "pbx_error", f"{agent_id}: the PBX refused: {msg}", d.reason)
        await self._record(d, agent_id, via, now)
        return d

    async def unpause(self, agent_id: str, *, via: str = "api") -> Decision:
        _check_via(via)
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await repo.get_agent(conn, agent_id)
            session = await repo.open_session(conn, agent_id)
            d = decide_unpause(session, agent_id)
            if d.allowed and session is not None and agent is not None:
                reply = await self._ami("QueuePause", {"Interface": agent.interface, "Paused": "false"})
                ok, msg = _ok(reply)
                if ok:
                    await repo.clear_pause(conn, session.id)
                else:
                    d = Decision("unpause", False, "pbx_error", f"{agent_id}: the PBX refused: {msg}")
        await self._record(d, agent_id, via, now)
        return d

    # ---- restore ------------------------------------------------------------------------
    async def restore(self, present: Collection[tuple[str, str]]) -> dict[str, Any]:
        """Put every open session back into Asterisk after a (re)connect.

        `present`: the (queue, interface) members QueueStatus just showed. Missing
        members are added with the pause the database holds (QueueAdd Paused/Reason); members still
        there are left as Asterisk has them; then each restored phone is qualified (capture 17:
        contacts persist but are UNAVAILABLE until re-qualified, up to 30 s)."""
        now = self._clock.now()
        added = failed = 0
        errors: list[str] = []
        async with self._pool.acquire() as conn:
            sessions = await repo.open_sessions(conn)
            agents = await repo.agents_by_id(conn, [s.agent for s in sessions])
            touched: list[int] = []
            for s in sessions:
                agent = agents.get(s.agent)
                if agent is None:
                    continue
                did = False
                for q in s.queues:
                    if (q, agent.interface) in present:
                        # still there (a plain reconnect): Asterisk's pause is current -- an
                        # Auto-Pause after a ring-no-answer (capture 02) must not be undone here
                        continue
                    did = True
                    err = await self._add(agent, q, s.penalty, s)
                    if err:
                        failed += 1
                        errors.append(f"{s.agent}@{q}: {err}")
                    else:
                        added += 1
                if did:
                    touched.append(s.id)
                    await self._qualify(agent)
            if touched:
                await repo.mark_restored(conn, touched, now)
        summary = {
            "sessions": len(sessions),
            "added": added,
            "failed": failed,
            "errors": errors[:20],
        }
        log.info("agents_restored", **{k: v for k, v in summary.items() if k != "errors"})
        await self._append(Event(ts=now, source="cti", type="agent_restore", payload=summary))
        return summary

    async def restore_after_resync(self, _client: Any, live: LiveState) -> None:
        """For AMIListener.after_resync: the snapshot just taken says who Asterisk still has."""
        await self.restore(set(live.state.members))

    # ---- AMI ----------------------------------------------------------------------------
    async def _add(self, agent: AgentInfo, queue: str, penalty: int, session: Session | None) -> str | None:
        headers = {
            "Queue": queue,
            "Interface": agent.interface,
            "Penalty": str(penalty),
            "MemberName": agent.id,
            "StateInterface": agent.interface,
        }
        if session is not None and session.paused:
            headers |= {"Paused": "true", "Reason": session.pause_reason or ""}
        ok, msg = _ok(await self._ami("QueueAdd", headers), "Already there")
        return None if ok else msg

    async def _join(
        self, agent: AgentInfo, queues: tuple[str, ...], penalty: int, session: Session | None
    ) -> str | None:
        joined: list[str] = []
        for q in queues:
            err = await self._add(agent, q, penalty, session)
            if err:
                for j in joined:  # all queues or none: a half login would ring in one queue only
                    await self._ami("QueueRemove", {"Queue": j, "Interface": agent.interface})
                return f"{q}: {err}"
            joined.append(q)
        return None

    async def _qualify(self, agent: AgentInfo) -> None:
        """Capture 19: without this a just-registered phone stays Status 5 for up to 30 s."""
        try:
            ok, msg = _ok(await self._ami("PJSIPQualify", {"Endpoint": agent.endpoint}))
            if not ok:
                log.warning("agent_qualify_failed", agent=agent.id, error=msg)
        except Exception as e:  # the login stands; the periodic qualify will come
            log.warning("agent_qualify_failed", agent=agent.id, error=repr(e))

    # ---- record -------------------------------------------------------------------------
    async def _record(self, d: Decision, agent_id: str, via: str, now: datetime, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "decision": "accepted" if d.allowed else "refused",
            "code": d.code,
            "message": d.message,
            "via": via,
            "reason": d.reason,
            **extra,
        }
        if d.pause_until is not None:
            payload["pause_until"] = d.pause_until.isoformat()
        if d.out:
            payload["out"] = list(d.out)
        log.info("agent_request", op=d.op, agent=agent_id, code=d.code, via=via)
        for fn in self.decided:
            try:
                fn(agent_id, d)
            except Exception:
                log.exception("agent_decision_listener_failed")
        await self._append(Event(ts=now, source="cti", type=f"agent_{d.op}", payload=payload, agent=agent_id))

    async def _append(self, ev: Event) -> None:
        # the decision stands in agent_logins; the log says what was lost
        await append_or_log(self._events, ev, "agent_event_failed")


def _never_raises(action: AmiAction) -> AmiAction:
    """Not connected, timed out, lost: an error reply like any other, so the request is refused and
    recorded instead of vanishing in a traceback."""

    async def call(name: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        try:
            return await action(name, headers)
        except Exception as e:
            return {"Response": "Error", "Message": f"AMI {name} failed: {e}"}

    return call


def _check_via(via: str) -> None:
    if via not in VIAS:
        raise ValueError(f"via must be one of {', '.join(VIAS)}, not {via!r}")
