"""DeskService: what the agent panel and the wallboard read and do. It folds the live AMI stream
(DeskTracker, DayFigures), builds masked views, records dispositions, originates click-to-call and
supervisor spying, and raises alarms and attendance violations as events. Login, pause and logout go
through AgentService (R-LOGIN, R-BREAK, R-PEAK refusals decided there, decision 0500).

Slightly over 600 lines on purpose: it is the one object both pages talk to, and what is left here is
I/O and view building; the decisions live in figures, tracker, alarms, attendance and
attendance_watch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from cti import defaults
from cti.agents.decide import Decision, Session
from cti.agents.service import AgentService
from cti.awaitables import maybe_await
from cti.callbacks import repo as callbacks_repo
from cti.callbacks.originate import OriginateRequest
from cti.clock import Clock
from cti.cluster import claims
from cti.desk import alarms as alarm_rules
from cti.desk import repo
from cti.desk.attendance_watch import AttendanceWatch, line_test_alarms_at
from cti.desk.figures import SEED_SQL, DayFigures, natural_key
from cti.desk.tracker import CallInfo, DeskTracker
from cti.masking import mask_number, mask_text
from cti.policy import Policy
from cti.state.live import LiveState
from cti.store.events import Event
from cti.store.sink import EventSink, append_or_log

log = structlog.get_logger(__name__)

OUTCOMES = ("order_placed", "inquiry", "complaint", "refusal", "call_back", "wrong_number", "never_call")
CATEGORIES = ("inquiry", "booking", "followup")
DNC_FOR = {"never_call": "do_not_disturb", "complaint": "complaint"}
WHY_PREFERRED = {
    "requested": "客户指定坐席 named request",
    "did": "直拨坐席号码 agent's direct number",
    "order_owner": "订单归属坐席 order owner",
}
WHY_CALLBACK = {
    "night": "夜间留言 night",
    "peak": "高峰 peak",
    "abandon": "漏接 missed",
    "manual": "预约 booked",
}
# ChanSpy options (app_chanspy, Asterisk 22): q no beep or name announced, w whisper to the agent,
# B barge: talk to both parties; with b only a bridged (talking) channel, E end when it hangs up,
# S stop when nothing is left to spy on (no ringing into silence)
SPY_MODES = {"listen": "bqES", "whisper": "bqESw", "barge": "bqESB"}
ALARM_EVERY_S = 5.0
AmiAction = Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, Any]]]


def _followup_order(info: CallInfo | None) -> int | None:
    """The order a click-to-call from the follow-up list was for: `followup:<id>` as click_to_call
    notes it, or the ChannelId `cti-desk-followup-<id>-…` when the call was learnt from AMI alone."""
    ref = info.desk_ref if info is not None else ""
    if ref.startswith("followup:"):
        tail = ref.split(":", 1)[1]
    elif ref.startswith("cti-desk-followup-"):
        tail = ref.split("-")[3]
    else:
        return None
    return int(tail) if tail.isdigit() else None


class DeskError(ValueError):
    """A request the desk refuses: the message says what is wrong (Chinese, then English)."""


@dataclass(frozen=True)
class AgentRow:
    id: str
    name: str
    group: str
    interface: str


class DeskService:
    def __init__(
        self,
        pool: Any,
        *,
        live: LiveState,
        agents: AgentService,
        policy: Policy,
        clock: Clock,
        tz: ZoneInfo,
        events: EventSink,
        ami_action: AmiAction | None = None,
        ami_connected: Callable[[], bool] = lambda: True,
        spool_files: Callable[[], int] = lambda: 0,
        in_peak: Callable[[], Any] = lambda: False,
        peak_status: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        callback_stats: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        default_did: str = defaults.DID,
        did_labels: Mapping[str, str] | None = None,
        alarm_hooks: list[Callable[[datetime], Any]] | None = None,
    ) -> None:
        self.pool, self.live, self.agents_svc = pool, live, agents
        self.policy, self.clock, self.tz, self._events = policy, clock, tz, events
        self._ami, self._ami_connected, self._spool_files = ami_action, ami_connected, spool_files
        self._in_peak, self._peak_status, self._callback_stats = in_peak, peak_status, callback_stats
        self.default_did = default_did
        self.did_labels = dict(did_labels if did_labels is not None else policy.did_labels)
        # (now) -> [Alarm]: the line tests' by default; others add theirs
        self.alarm_hooks = list(
            alarm_hooks if alarm_hooks is not None else [self.line_tests, self.overdue_callbacks]
        )
        self.tracker = DeskTracker()
        self.figures = DayFigures(policy.ring)
        self.roster: dict[str, AgentRow] = {}
        self.last_read = 0.0  # wall time the last AMI frame was folded (bench: read → received)
        self._listeners: list[Callable[[frozenset[str] | None], None]] = []
        self._pops: dict[str, dict[str, Any]] = {}
        self._state_since: dict[tuple[str, str], tuple[str, float]] = {}  # (view, agent) -> state, since
        self._sessions: list[Session] = []
        self._sessions_at = 0.0
        self._airs: list[dict[str, Any]] = []
        self._airs_at = -1e9
        self._refusals: list[tuple[str, datetime, str]] = []
        self._raised: set[tuple[Any, ...]] = set()
        self.attendance = AttendanceWatch(pool, policy, tz, self.tracker, live, self._emit)
        self.alarms: list[alarm_rules.Alarm] = []
        self._day = None
        self._seq = 0
        self.process = f"{socket.gethostname()}:{os.getpid()}"  # its lease owns the desk's agent claims
        self._desk_actions: dict[str, str] = {}  # ActionID -> ChannelId of click-to-calls in flight
        self._task: asyncio.Task[None] | None = None
        self._unsub: Callable[[], None] | None = None

    # ---- life ---------------------------------------------------------------------------
    async def start(self, *, watch: bool = True) -> None:
        """`watch=False`: no alarm loop (tests call check_alarms() at the times they choose)."""
        await self.refresh_agents()
        await self._seed_day()
        self._unsub = self.live.subscribe(self.observe)
        self.agents_svc.decided.append(self._decided)
        if watch:
            self._task = asyncio.create_task(self._watch(), name="desk-alarms")

    async def close(self) -> None:
        if self._unsub:
            self._unsub()
        if self._decided in self.agents_svc.decided:
            self.agents_svc.decided.remove(self._decided)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh_agents(self) -> None:
        async with self.pool.acquire() as conn:
            rows = await repo.agents(conn)
        self.roster = {r["id"]: AgentRow(r["id"], r["name"], r["group_name"], r["interface"]) for r in rows}

    def _today(self) -> tuple[datetime, datetime]:
        local = self.clock.now().astimezone(self.tz)
        start = datetime.combine(local.date(), datetime.min.time(), self.tz)
        return start, start + timedelta(days=1)

    async def _seed_day(self) -> None:
        start, end = self._today()
        self._day = start.date()
        self.figures = DayFigures(self.policy.ring)
        async with self.pool.acquire() as conn:
            self.figures.seed(await conn.fetch(SEED_SQL, start, min(end, self.clock.now())))
        for agent, day in self.figures.per_agent.items():  # calls answered before this process began
            self.tracker.agent(agent).calls_today = day.calls

    def subscribe(self, fn: Callable[[frozenset[str] | None], None]) -> Callable[[], None]:
        """`fn(agents)`: these agents' views changed (None: the floor changed, wallboard only)."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def _notify(self, agents: frozenset[str] | None) -> None:
        for fn in self._listeners:
            try:
                fn(agents)
            except Exception:
                log.exception("desk_listener_failed")

    def observe(self, live: LiveState, ev: Mapping[str, Any]) -> None:
        """LiveState listener: every AMI event after the reducer applied it."""
        self.last_read = time.time()
        changed = self.tracker.apply(ev, live.state.last_ts)
        self.figures.apply(ev)
        name = ev.get("Event", "")
        if str(name).startswith("QueueMember"):  # pause / status of a member: their view too
            member = ev.get("MemberName")
            if isinstance(member, str):
                changed = (*changed, member)
        self._notify(frozenset(changed))

    # ---- the agent's view ---------------------------------------------------------------
    async def sessions(self, max_age_s: float = 1.0) -> list[Session]:
        if time.monotonic() - self._sessions_at > max_age_s:
            self._sessions = await self.agents_svc.logged_in()
            self._sessions_at = time.monotonic()
        return self._sessions

    def _state(
        self, agent: str, session: Session | None, *, pending_is_wrapup: bool = True
    ) -> tuple[str, str | None]:
        """The agent's state. `pending_is_wrapup`: an ended call without its disposition keeps the
        agent's own panel in wrap-up (the form waits there); the wallboard shows what the queue
        sees — a free member is ready, flagged `disposition_pending`."""
        if session is None:
            return "logged_out", None
        desk = self.tracker.agents.get(agent)
        if desk is not None and desk.call is not None:
            return ("ringing" if desk.call.phase == "ringing" else "in_call"), None
        members = [m for m in self.live.state.members.values() if m.name == agent]
        if any(m.paused for m in members) or session.paused:
            reason = session.pause_reason or next((m.paused_reason for m in members if m.paused), "")
            return "paused", reason
        if pending_is_wrapup and desk is not None and desk.last_call is not None:
            return "wrapup", None
        if any(m.wrapup_until is not None and self.live.state.last_ts < m.wrapup_until for m in members):
            return "wrapup", None
        return "ready", None

    def _since(self, key: tuple[str, str], state: str, session: Session | None) -> float:
        """When the agent entered `state`: the pause's own time, the call's ring/answer/end (Asterisk's
        Timestamp), the login; else the first time this view saw the state."""
        now = self.clock.time()
        prev = self._state_since.get(key)
        if prev is not None and prev[0] == state:
            return prev[1]
        desk = self.tracker.agents.get(key[1])
        if state == "paused" and session and session.paused_at:
            at = session.paused_at.timestamp()
        elif state in ("ringing", "in_call", "wrapup") and desk is not None and desk.since:
            at = desk.since
        elif state == "ready" and prev is None and session is not None:
            at = session.login_at.timestamp() if desk is None or not desk.since else desk.since
        else:
            at = now
        self._state_since[key] = (state, at)
        return at

    async def agent_view(self, agent: str) -> dict[str, Any]:
        """Everything the agent's panel shows. Masked: no full number in here (R-MASK)."""
        # the open sessions, cached for a second (a request below resets it): one query per push
        # burst for every viewer instead of one per agent view
        session = next((s for s in await self.sessions() if s.agent == agent), None)
        state, reason = self._state(agent, session)
        since = self._since(("panel", agent), state, session)
        desk = self.tracker.agents.get(agent)
        call = (desk.call or desk.last_call) if desk else None
        view: dict[str, Any] = {
            "agent": agent,
            "name": self.roster[agent].name if agent in self.roster else agent,
            "state": state,
            "pause_reason": reason,
            "pause_until": self._hm(session.pause_until) if session and session.pause_until else None,
            "since": self._hms(since),
            "in_state_s": round(max(0.0, self.clock.time() - since)),
            "pause_reasons": list(self.policy.breaks.pause_reasons),
            "pop": await self.pop(agent, call.linkedid) if call is not None else None,
        }
        return view

    def _hm(self, t: datetime) -> str:
        return t.astimezone(self.tz).strftime("%H:%M")

    def _day_hm(self, t: datetime | None) -> str | None:
        return t.astimezone(self.tz).strftime("%m-%d %H:%M") if t is not None else None

    def _hms(self, epoch: float) -> str:
        return datetime.fromtimestamp(epoch, self.tz).strftime("%H:%M:%S")

    async def pop(self, agent: str, linkedid: str) -> dict[str, Any] | None:
        """The screen pop for the agent's current (or last, until dispositioned) call."""
        info = self.tracker.call(linkedid)
        desk = self.tracker.agents.get(agent)
        call = (desk.call if desk and desk.call and desk.call.linkedid == linkedid else None) or (
            desk.last_call if desk else None
        )
        base = self._pops.get(linkedid)
        if base is None:
            if info is None:
                return None
            base = self._pops[linkedid] = await self._build_pop(agent, info)
        elif base["preferred"] and base["preferred_reason"] is None and call and call.phase == "in_call":
            # the route event is written in batches: at the ring it may not be stored yet; ask once more
            # at the answer (the ring's pop then said "order owner" or "named request" by inference)
            async with self.pool.acquire() as conn:
                base["preferred_reason"] = await repo.route_reason(conn, linkedid, self.clock.now()) or ""
        return {**base, "phase": call.phase if call else "ended", "via": call.via if call else None,
                "why": self._why(base, call.via if call else "queue", agent)}  # fmt: skip

    async def _build_pop(self, agent: str, info: Any) -> dict[str, Any]:
        number = info.number
        did = info.did
        out: dict[str, Any] = {
            "call": info.linkedid,  # Asterisk's Linkedid: an opaque id, not the number
            "number": mask_number(number) or "—",
            "did": did,
            "did_label": self.did_labels.get(did, ""),
            "queue": info.queue,
            "preferred": info.preferred,
            "customer": None,
            "orders": [],
            "recent": [],
            "callback": None,
            "preferred_reason": None,
        }
        async with self.pool.acquire() as conn:
            if info.callback_id is not None:
                cb = await repo.callback(conn, info.callback_id)
                if cb is not None:
                    number = number or cb["number"]
                    out["number"] = mask_number(number)
                    did = out["did"] = cb["did"] or did
                    out["did_label"] = self.did_labels.get(did or "", "")
                    out["callback"] = {"id": cb["id"], "kind": cb["kind"], "calls": cb["call_count"],
                                       "first_call": self._hm(cb["first_call_at"])}  # fmt: skip
            if info.preferred:
                out["preferred_reason"] = await repo.route_reason(
                    conn, info.linkedid, datetime.fromtimestamp(info.started, self.clock.now().tzinfo)
                )
            if number:
                cust = await repo.customer(conn, number)
                if cust is not None:
                    out["customer"] = {"id": cust["id"], "name": cust["name"] or ""}
                    out["orders"] = [
                        {"id": o["id"], "status": o["status"], "owner": o["owner_agent"],
                         "product": o["product"], "date": f"{o['created_at'].astimezone(self.tz):%Y-%m-%d}"}
                        for o in await repo.orders(conn, cust["id"])
                    ]  # fmt: skip
                out["recent"] = [
                    {"call": r["linkedid"], "at": r["started_at"].astimezone(self.tz).strftime("%m-%d %H:%M"),
                     "agent": r["answered_by"],
                     "outcome": r["outcome"] or ("abandoned" if r["abandoned"] else ""),
                     "note": mask_number_text(r["note"])}
                    for r in await repo.recent_calls(conn, number, info.linkedid)
                ]  # fmt: skip
        return out

    def _why(self, pop: Mapping[str, Any], via: str, agent: str) -> str:
        if via == "callback" and pop.get("callback"):
            return f"回拨 callback · {WHY_CALLBACK.get(pop['callback']['kind'], pop['callback']['kind'])}"
        if via == "desk":
            return "点击外呼 click-to-call"
        if via == "preferred" or (pop.get("preferred") == agent and via != "queue"):
            reason = pop.get("preferred_reason")
            if not reason and any(o["owner"] == agent for o in pop.get("orders", ())):
                reason = "order_owner"
            return WHY_PREFERRED.get(reason or "requested", WHY_PREFERRED["requested"])  # "": not stored
        q = pop.get("queue") or "—"
        if pop.get("preferred") == agent:
            return f"队列 queue {q}(指定坐席未接后 after the named agent)"
        return f"队列 queue {q}"

    # ---- requests (through AgentService) ------------------------------------------------
    async def request(
        self, agent: str, op: str, reason: str | None = None, *, via: str = "panel"
    ) -> Decision:
        svc = self.agents_svc
        if op == "login":
            d = await svc.login(agent, via=via)
        elif op == "logout":
            d = await svc.logout(agent, via=via)
        elif op == "pause":
            d = await svc.pause(agent, reason, via=via)
        elif op == "unpause":
            d = await svc.unpause(agent, via=via)
        else:
            raise DeskError(f"未知操作 unknown request {op!r}")
        if not d.allowed and d.code in ("break_limit", "peak_mode") and op == "pause":
            await self.check_alarms()  # on the wallboard now, not at the next watch tick
        if d.allowed and op == "logout":
            await self.attendance.judge_logout(agent, self.clock.now())
        return d

    def _decided(self, agent: str, d: Decision) -> None:
        """AgentService decided (phone, CLI, panel or wallboard): the panel shows it at once and a
        refused break or peak pause becomes an alarm."""
        self._sessions_at = 0.0
        if not d.allowed and d.op == "pause" and d.code in ("break_limit", "peak_mode"):
            self._refusals.append((agent, self.clock.now(), d.code))
        self._notify(frozenset({agent}))

    # ---- dispositions -------------------------------------------------------------------
    async def dispose(self, agent: str, body: Mapping[str, Any]) -> dict[str, Any]:
        linkedid = str(body.get("call", ""))
        outcome, category = body.get("outcome"), body.get("category")
        note = str(body.get("note") or "").strip()
        if outcome not in OUTCOMES:
            raise DeskError(f"结果无效 outcome must be one of {', '.join(OUTCOMES)}")
        if category not in CATEGORIES:
            raise DeskError(f"类别无效 category must be one of {', '.join(CATEGORIES)}")
        if len(note) > 2000:
            raise DeskError("备注过长 note longer than 2000 characters")
        desk = self.tracker.agents.get(agent)
        call = None
        if desk is not None:
            for c in (desk.last_call, desk.call):
                if c is not None and c.linkedid == linkedid and c.answered_at is not None:
                    call = c
        if call is None:
            raise DeskError("该通话不属于你或尚未接通 not a call you answered")
        cb_at: datetime | None = None
        if outcome == "call_back":
            try:
                cb_at = datetime.fromisoformat(str(body.get("callback_at", "")))
            except ValueError:
                raise DeskError(
                    "回拨时间无效 callback_at must be a date and time (YYYY-MM-DDTHH:MM)"
                ) from None
            if cb_at.tzinfo is None:
                cb_at = cb_at.replace(tzinfo=self.tz)
            if cb_at <= self.clock.now():
                raise DeskError("回拨时间须在将来 callback_at must be in the future")
        info = self.tracker.call(linkedid)
        number = info.number if info else ""
        did = (info.did if info else "") or self.default_did
        now = self.clock.now()
        handled = (call.ended_at or now.timestamp()) - (call.answered_at or now.timestamp())
        callback_id = None
        async with self.pool.acquire() as conn, conn.transaction():
            if info and info.callback_id is not None and not number:
                cb = await repo.callback(conn, info.callback_id)
                number = cb["number"] if cb else ""
            if cb_at is not None:
                if not number:
                    raise DeskError("号码未知,无法回拨 the number is unknown: no callback possible")
                ref = await callbacks_repo.create_or_join(
                    conn, number=number, did=did, kind="manual", now=now, source_linkedid=linkedid,
                    preferred_agent=agent,
                )  # fmt: skip
                await conn.execute("UPDATE callbacks SET next_attempt_at = $2 WHERE id = $1", ref.id, cb_at)
                callback_id = ref.id
            new_id = await repo.insert_disposition(
                conn, linkedid=linkedid, agent=agent, outcome=outcome, category=category, note=note,
                callback_at=cb_at, callback_id=callback_id, handled_s=round(max(0.0, handled), 3), at=now,
            )  # fmt: skip
            if new_id is None:
                raise DeskError("该通话已登记 this call already has a disposition")
            dnc = DNC_FOR.get(outcome)
            if dnc and number:
                await repo.add_dnc(conn, number, dnc, note[:500], linkedid, agent, now)
            order_id = _followup_order(info)
            if (category == "followup" or order_id is not None) and outcome != "wrong_number":
                # R-FOLLOWUP: an answered follow-up with its result recorded counts toward the quota
                answered = datetime.fromtimestamp(call.answered_at, self.tz) if call.answered_at else now
                await repo.record_followup(
                    conn, agent=agent, linkedid=linkedid, called_at=answered, outcome=outcome,
                    order_id=order_id,
                )  # fmt: skip
        self.tracker.dispose(agent, linkedid)
        self._pops.pop(linkedid, None)
        payload = {"outcome": outcome, "category": category, "note": mask_number_text(note),
                   "number": mask_number(number), "callback_id": callback_id,
                   "callback_at": cb_at.isoformat() if cb_at else None, "dnc": DNC_FOR.get(outcome),
                   "handled_s": round(max(0.0, handled), 1)}  # fmt: skip
        await self._emit("disposition", payload, agent=agent, linkedid=linkedid)
        self._notify(frozenset({agent}))
        return {"id": new_id, "callback_id": callback_id, "dnc": DNC_FOR.get(outcome)}

    # ---- click to call ------------------------------------------------------------------
    async def my_records(self, agent: str) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            cbs = await repo.my_callbacks(conn, agent)
            fus = await repo.my_followups(conn, agent)
        return {
            "callbacks": [{"id": c["id"], "number": mask_number(c["number"]), "kind": c["kind"],
                           "first_call": self._hm(c["first_call_at"]), "calls": c["call_count"]}
                          for c in cbs],
            "followups": [{"id": f["id"], "number": mask_number(f["number"]), "status": f["status"],
                           "product": f["product"], "last": self._day_hm(f["last_followup"])}
                          for f in fus],
        }  # fmt: skip

    async def click_to_call(self, agent: str, kind: str, ref: int) -> dict[str, Any]:
        if kind not in ("callback", "followup"):
            raise DeskError("只能拨打回拨或回访记录 kind must be callback or followup")
        if self._ami is None:
            raise DeskError("外呼未启用 calling is not available")
        session = await self.agents_svc.session(agent)
        state, _ = self._state(agent, session)
        if state not in ("ready", "paused", "wrapup"):
            raise DeskError(f"当前状态不能外呼 cannot call while {state}")
        row = self.roster.get(agent)
        async with self.pool.acquire() as conn:
            found = await repo.number_for(conn, kind, ref, agent)
        if found is None or row is None:
            raise DeskError("记录不存在或不属于你 no such record of yours")
        number, did = found
        self._seq += 1
        channel_id = f"cti-desk-{kind}-{ref}-{int(self.clock.time())}{self._seq}"
        req = OriginateRequest(
            callback_id=ref if kind == "callback" else 0, attempt=1, channel=row.interface, exten=number,
            did=did or self.default_did, channel_id=channel_id,
            timeout_ms=int(self.policy.ring.agent_timeout_s * 1000),
            extra_variables=(("CTI_MASKED", mask_number(number)),),
            agent_display=f"外呼 {mask_number(number)}",
        )  # fmt: skip
        # the tracker learns the call before its first event: the pop knows number and record at once
        info = self.tracker.calls[channel_id] = CallInfo(channel_id, self.clock.time(), number=number,
                                                         did=req.did, desk_ref=f"{kind}:{ref}")  # fmt: skip
        if kind == "callback":
            info.callback_id = ref
        # the agent is claimed like for a callback or a dial (decision 0110): never rung twice at once
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claims.claim_agent(conn, agent, kind="desk", ref=channel_id, process=self.process):
                raise DeskError("坐席正在被呼叫 the agent is being rung for another call")
        try:
            reply = await self._ami("Originate", req.headers())
        except Exception:
            await claims.release_pool(self.pool, channel_id)
            raise
        ok = str(reply.get("Response")) == "Success"
        if not ok:
            await claims.release_pool(self.pool, channel_id)
        elif reply.get("ActionID"):
            self._desk_actions[str(reply["ActionID"])] = channel_id
        await self._emit("desk_call", {"kind": kind, "ref": ref, "channel_id": channel_id,
                                       "number": mask_number(number), "response": reply.get("Response")},
                         agent=agent)  # fmt: skip
        if not ok:
            raise DeskError(f"交换机拒绝 the PBX refused: {reply.get('Message', '')}")
        return {"call": channel_id}

    async def handle_ami(self, frame: Mapping[str, Any]) -> None:
        """A click-to-call's agent claim ends with its agent leg (Hangup, Uniqueid = our ChannelId) or
        with a failed Originate (OriginateResponse Failure: Uniqueid `<unknown>`, matched by ActionID)."""
        ev = frame.get("Event")
        if ev == "Hangup":
            uid = str(frame.get("Uniqueid") or "")
            if uid.startswith("cti-desk-"):
                await claims.release_pool(self.pool, uid)
        elif ev == "OriginateResponse" and frame.get("Response") != "Success":
            ref = self._desk_actions.pop(str(frame.get("ActionID")), None)
            if ref is not None:
                await claims.release_pool(self.pool, ref)

    # ---- the agent's day ----------------------------------------------------------------
    async def agent_day(self, agent: str) -> dict[str, Any]:
        start, _ = self._today()
        out = self.figures.agent_summary(agent)  # service level and AHT: the queue's calls
        desk = self.tracker.agents.get(agent)
        out["calls"] = desk.calls_today if desk else 0  # every call answered, whichever way it came
        out["ring_no_answers"] = desk.rna_today if desk else 0
        async with self.pool.acquire() as conn:
            out["dispositions"] = await conn.fetchval(
                "SELECT count(*) FROM dispositions WHERE agent = $1 AND at >= $2", agent, start
            )
            pts = await repo.day_points(conn, agent, start)
            local = start.astimezone(self.tz)
            monday = local - timedelta(days=local.weekday())
            made = await repo.followups_since(conn, agent, monday)
        out["fines"] = pts  # None: the fines ledger is not on this database yet
        out["followups_week"] = {"made": made, "quota": self.policy.followup.weekly_quota}  # R-FOLLOWUP
        return out

    # ---- wallboard ----------------------------------------------------------------------
    async def wallboard(self) -> dict[str, Any]:
        sessions = {s.agent: s for s in await self.sessions()}
        rows = []
        for aid in sorted(set(self.roster) | set(sessions), key=natural_key):
            s = sessions.get(aid)
            state, reason = self._state(aid, s, pending_is_wrapup=False)
            since = self._since(("board", aid), state, s)
            desk = self.tracker.agents.get(aid)
            rows.append({
                "agent": aid, "name": self.roster[aid].name if aid in self.roster else aid,
                "group": self.roster[aid].group if aid in self.roster else "", "state": state,
                "reason": reason, "since": self._hms(since),
                "in_state_s": round(max(0.0, self.clock.time() - since)),
                "calls": desk.calls_today if desk else 0,  # queue, named/owner, callbacks, click-to-call
                "ring_no_answers": desk.rna_today if desk else 0,
                "number": self.tracker.masked(desk.call.linkedid) if desk and desk.call else "",
                "disposition_pending": bool(desk and desk.last_call),
            })  # fmt: skip
        peak = await self._peak_status() if self._peak_status else {}
        cbs = await self._callback_stats() if self._callback_stats else {}
        start, end = self._today()
        tail = self.policy.peak.tail_minutes
        if time.monotonic() - self._airs_at > 60:  # the ad schedule changes rarely: once a minute
            async with self.pool.acquire() as conn:
                self._airs = await repo.airings(conn, start, end)
            self._airs_at = time.monotonic()
        airs = self._airs
        return {
            "now": self.clock.now().astimezone(self.tz).strftime("%H:%M:%S"),
            "timezone": str(self.tz),
            "figures": self.figures.summary(),
            "callbacks": {"open": cbs.get("open", 0) + cbs.get("dialing", 0),
                          "oldest_wait_s": cbs.get("oldest_wait_s", 0)},
            "peak": peak,
            "schedule": [{"channel": a["channel"], "program": a["program"], "start": self._hm(a["starts_at"]),
                          "end": self._hm(a["starts_at"] + timedelta(seconds=a["duration_s"])),
                          "start_min": round((a["starts_at"] - start).total_seconds() / 60),
                          "minutes": round(a["duration_s"] / 60 + (a["tail_minutes"] or tail))}
                         for a in airs],
            "agents": rows,
            "alarms": [{"kind": a.kind, "agent": a.agent, "since": self._hm(a.since), "text": a.text}
                       for a in self.alarms],
        }  # fmt: skip

    async def spy(self, supervisor_agent: str | None, agent: str, mode: str, by: str) -> dict[str, Any]:
        """Listen / whisper / barge: Originate the supervisor's own phone into ChanSpy on the agent's
        channel. The prefix ends in '-' (PJSIP/agent1-0000002a): `PJSIP/agent1` alone would also
        match agent10's channels, ChanSpy's chanprefix being a plain prefix."""
        if mode not in SPY_MODES:
            raise DeskError("mode must be listen, whisper or barge")
        if self._ami is None:
            raise DeskError("外呼未启用 AMI is not available")
        me = self.roster.get(supervisor_agent or "")
        target = self.roster.get(agent)
        if me is None:
            raise DeskError("你的账号未绑定话机 your web user has no phone (agent_id) to ring")
        if target is None:
            raise DeskError(f"no agent {agent!r}")
        headers = {"Channel": me.interface, "Application": "ChanSpy",
                   "Data": f"{target.interface}-,{SPY_MODES[mode]}", "CallerID": f'"监听 {agent}" <{agent}>',
                   "Timeout": "30000", "Async": "true"}  # fmt: skip
        reply = await self._ami("Originate", headers)
        await self._emit(
            "supervisor_spy", {"mode": mode, "by": by, "response": reply.get("Response")}, agent=agent
        )
        if str(reply.get("Response")) != "Success":
            raise DeskError(f"交换机拒绝 the PBX refused: {reply.get('Message', '')}")
        return {"ok": True, "mode": mode}

    # ---- alarms and attendance ----------------------------------------------------------
    async def _watch(self) -> None:
        while True:
            try:
                await self.check_alarms()
            except Exception:
                log.exception("desk_alarm_check_failed")
            await self.clock.sleep(ALARM_EVERY_S)

    async def check_alarms(self) -> list[alarm_rules.Alarm]:
        now = self.clock.now()
        start, _ = self._today()
        if self._day is not None and start.date() != self._day:
            self.tracker.reset_day()
            await self._seed_day()
        self._sessions_at = 0.0
        sessions = await self.sessions()
        extra: list[alarm_rules.Alarm] = []
        for hook in self.alarm_hooks:
            extra.extend(await maybe_await(hook(now)))
        extra.extend(await self.attendance.check(sessions, now))
        horizon = now - timedelta(minutes=30)
        self._refusals = [r for r in self._refusals if r[1] >= horizon]
        current = alarm_rules.alarms(
            now=now, sessions=sessions, in_peak=bool(await maybe_await(self._in_peak())),
            rna_streaks={a: d.rna_streak for a, d in self.tracker.agents.items()},
            refusals=self._refusals, ami_connected=self._ami_connected(), spool_files=self._spool_files(),
            extra=extra,
        )  # fmt: skip
        stable = {"break_overrun", "peak_pause", "break_refused", "peak_pause_refused", "line_test_failed",
                  "line_test_skipped"}  # fmt: skip
        keys = set()
        for a in current:
            key = a.key() if a.kind in stable else (a.kind, a.agent)
            keys.add(key)
            if key not in self._raised:
                self._raised.add(key)
                await self._emit("desk_alarm", {"kind": a.kind, "text": a.text, "since": a.since.isoformat()},
                                 agent=a.agent)  # fmt: skip
        self._raised &= keys | {k for k in self._raised if k[0] in stable}
        changed = [(a.kind, a.agent) for a in current] != [(a.kind, a.agent) for a in self.alarms]
        self.alarms = current
        if changed:
            self._notify(None)
        return current

    async def line_tests(self, now: datetime) -> list[alarm_rules.Alarm]:
        return await line_test_alarms_at(self.pool, self.policy, self.tz, now)

    async def overdue_callbacks(self, now: datetime) -> list[alarm_rules.Alarm]:
        async with self.pool.acquire() as conn:
            r = await conn.fetchrow(
                """SELECT count(*) AS n, min(due_by) AS oldest FROM callbacks
                   WHERE status IN ('open', 'dialing') AND due_by < $1""",
                now,
            )
        return alarm_rules.overdue_callbacks_alarm(now, int(r["n"]), r["oldest"])

    async def _emit(self, type_: str, payload: dict[str, Any], *, agent: str | None = None,
                    linkedid: str | None = None) -> None:  # fmt: skip
        ev = Event(
            ts=self.clock.now(), source="cti", type=type_, payload=payload, agent=agent, linkedid=linkedid
        )
        await append_or_log(self._events, ev, "desk_event_failed")


def mask_number_text(text: str | None) -> str:
    return mask_text(text or "")
