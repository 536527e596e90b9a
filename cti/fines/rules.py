"""The fines rules as one pure function: facts in, ledger rows out. No clock, no database.

Each row's id is `rule:source:person`, built only from the facts that caused it, so deriving the
same facts twice gives the same rows (the rebuild's idempotence), and a waiver keyed by that id
still points at its row after a rebuild. Each row is priced by `policy_at(occurred_at)`: the policy
in force when the violation happened, not today's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from cti.fines.money import to_fen
from cti.policy import FineRule, Policy

PolicyAt = Callable[[datetime], Policy]


# ---- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Call:
    linkedid: str
    started_at: datetime
    outcome: str  # answered | abandoned | timeout | unqueued (call_facts.outcome)
    answered_by: str | None = None
    time_to_answer_s: float | None = None
    hung_up_first: str | None = None  # caller | agent | transfer
    agents_logged_in: int | None = None
    left_queue_at: datetime | None = None
    ended_at: datetime | None = None
    to_survey: bool = False  # the agent left with the transfer-to-survey key (survey_results.via)


@dataclass(frozen=True, slots=True)
class NamedRequest:
    """The AGI `route` event: the caller asked for `agent` (IVR choice or the agent's own DID)."""

    linkedid: str
    at: datetime
    agent: str
    reason: str  # requested | did | order_owner


@dataclass(frozen=True, slots=True)
class PeakPause:
    agent: str
    queue: str
    kind: str  # pause | logoff
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Pause:
    agent: str
    queue: str
    reason: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Login:
    agent: str
    login_at: datetime
    logout_at: datetime | None


@dataclass(frozen=True, slots=True)
class RosterEntry:
    day: date
    shift: str
    group: str
    supervisor: str | None
    agents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LineTest:
    line: str
    day: date
    slot: str
    result: str  # ok | failed


@dataclass
class FineInputs:
    calls: Sequence[Call] = ()
    requests: Sequence[NamedRequest] = ()
    peak_pauses: Sequence[PeakPause] = ()
    pauses: Sequence[Pause] = ()
    logins: Sequence[Login] = ()
    roster: Sequence[RosterEntry] = ()
    lines: Sequence[str] = ()  # active test lines (R-LINE-TEST)
    line_tests: Sequence[LineTest] = ()
    followups: Sequence[tuple[str, datetime]] = ()  # (agent, called_at) (R-FOLLOWUP)
    supervisor_of: dict[str, str] = field(default_factory=dict)  # agents.supervisor, the fallback
    days: Sequence[date] = ()  # site-local days to check for day-shaped rules (line tests)


# ---- output ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: str
    violation_id: str
    rule: str
    person: str | None
    role: str  # agent | supervisor
    amount_fen: int
    points: int
    occurred_at: datetime
    source_kind: str
    source_id: str
    detail: dict[str, Any]


# ---- shifts ---------------------------------------------------------------------------------------
def shift_window(policy: Policy, day: date, shift: str, tz: tzinfo) -> tuple[datetime, datetime] | None:
    for s in policy.shifts:
        if s.name == shift:
            start = datetime.combine(day, s.start, tz)
            end = datetime.combine(day, s.end, tz)
            if end <= start:  # a night shift ends the next morning
                end += timedelta(days=1)
            return start, end
    return None


class Shifts:
    """Roster entries with their time windows (each priced by the policy of its day)."""

    def __init__(self, roster: Iterable[RosterEntry], policy_at: PolicyAt, tz: tzinfo) -> None:
        self.entries: list[tuple[RosterEntry, datetime, datetime]] = []
        for e in roster:
            noon = datetime.combine(e.day, datetime.min.time(), tz) + timedelta(hours=12)
            w = shift_window(policy_at(noon), e.day, e.shift, tz)
            if w is not None:
                self.entries.append((e, *w))

    def covering(self, t: datetime) -> list[RosterEntry]:
        return [e for e, s, end in self.entries if s <= t < end]


def logged_in_at(logins: Iterable[Login], t: datetime) -> list[str]:
    return sorted({x.agent for x in logins if x.login_at <= t and (x.logout_at is None or x.logout_at > t)})


def on_shift(
    t: datetime, shifts: Shifts, logins: Sequence[Login], supervisor_of: dict[str, str]
) -> tuple[list[str], list[str], str]:
    """(agents, supervisors, basis) on shift at t: the roster where one covers t, else who was
    logged in and their supervisors from the agents table."""
    cover = shifts.covering(t)
    if cover:
        agents = sorted({a for e in cover for a in e.agents})
        sups = sorted({e.supervisor for e in cover if e.supervisor})
        return agents, sups, "roster"
    agents = logged_in_at(logins, t)
    sups = sorted({supervisor_of[a] for a in agents if a in supervisor_of})
    return agents, sups, "logged_in"


# ---- rules ----------------------------------------------------------------------------------------
def _rows(
    rule_key: str,
    rule: FineRule,
    source_kind: str,
    source_id: str,
    at: datetime,
    agents: Sequence[str | None],
    supervisors: Sequence[str],
    detail: dict[str, Any],
) -> list[LedgerRow]:
    """The rows of one violation: each agent pays the agent share (also when it is 0 and nobody else
    pays: the violation is still recorded), each supervisor the supervisor share."""
    vid = f"{rule_key}:{source_id}"
    out: list[LedgerRow] = []
    agent_fen, sup_fen = to_fen(rule.agent), to_fen(rule.supervisor)
    if agent_fen > 0 or rule.points > 0 or sup_fen == 0:
        for a in agents or [None]:
            out.append(
                LedgerRow(
                    f"{vid}:{a or '-'}",
                    vid,
                    rule_key,
                    a,
                    "agent",
                    agent_fen,
                    rule.points,
                    at,
                    source_kind,
                    source_id,
                    detail,
                )
            )
    if sup_fen > 0:
        for s in supervisors or [None]:  # type: ignore[list-item]
            out.append(
                LedgerRow(
                    f"{vid}:{s or '-'}:sup",
                    vid,
                    rule_key,
                    s,
                    "supervisor",
                    sup_fen,
                    0,
                    at,
                    source_kind,
                    source_id,
                    detail,
                )
            )
    return out


def derive_ledger(inp: FineInputs, policy_at: PolicyAt, tz: tzinfo, until: datetime) -> list[LedgerRow]:
    """Every violation the inputs show that had happened (and, for day/week rules, closed) by
    `until`, sorted by (occurred_at, id)."""
    shifts = Shifts(inp.roster, policy_at, tz)
    out: list[LedgerRow] = []
    calls = {c.linkedid: c for c in inp.calls}

    for c in inp.calls:
        p = policy_at(c.started_at)
        limit = p.ring.slow_response_s
        # R-30S: not answered by a person within 30 s of arrival (answered late, or never)
        if c.outcome == "answered":
            waited = c.time_to_answer_s
        elif c.outcome != "unqueued":  # still unanswered when it left the queue (or hung up)
            end = c.left_queue_at or c.ended_at
            waited = (end - c.started_at).total_seconds() if end else None
        else:
            waited = None
        late = waited is not None and waited > limit
        if late and "slow_response" in p.fines:
            at = c.started_at + timedelta(seconds=limit)
            out += _rows(
                "slow_response",
                policy_at(at).fines["slow_response"],
                "call",
                c.linkedid,
                at,
                [c.answered_by],
                [],
                {"waited_s": round(float(waited or 0), 3)},
            )
        # R-MISSED: lost while agents were logged in -> every on-shift agent and the supervisor
        if c.outcome in ("abandoned", "timeout") and (c.agents_logged_in or 0) > 0:
            at = c.left_queue_at or c.ended_at or c.started_at
            rule = policy_at(at).fines.get("missed_call")
            if rule is not None:
                agents, sups, basis = on_shift(c.started_at, shifts, inp.logins, inp.supervisor_of)
                out += _rows(
                    "missed_call",
                    rule,
                    "call",
                    c.linkedid,
                    at,
                    agents,
                    sups,
                    {"outcome": c.outcome, "on_shift_basis": basis},
                )
        # R-HANGUP-LAST
        if c.hung_up_first == "agent" and c.answered_by:
            at = c.ended_at or c.started_at
            pol = policy_at(at)
            rule = pol.fines.get("agent_hung_up_first")
            # sending the customer on to the satisfaction survey with the key is the house's own
            # way to end a call, not hanging up on them (policy survey.key_excuses_hangup)
            if rule is not None and not (c.to_survey and pol.survey.key_excuses_hangup):
                out += _rows("agent_hung_up_first", rule, "call", c.linkedid, at, [c.answered_by], [], {})

    # R-PREFERRED: the caller asked for a named agent (IVR or their DID), routing rang that agent
    # first, and the call was not taken by them
    for r in inp.requests:
        if r.reason not in ("requested", "did"):
            continue
        c = calls.get(r.linkedid)
        if c is None or c.answered_by == r.agent:
            continue
        rule = policy_at(r.at).fines.get("ignored_request")
        if rule is not None:
            out += _rows(
                "ignored_request",
                rule,
                "call",
                r.linkedid,
                r.at,
                [r.agent],
                [],
                {"answered_by": c.answered_by, "request": r.reason},
            )

    # R-PEAK: pause or log-off at the phone during peak (recorded by the peak guard)
    for v in inp.peak_pauses:
        rule = policy_at(v.occurred_at).fines.get("peak_pause")
        if rule is not None:
            sid = f"{v.agent}@{v.queue}@{v.occurred_at.isoformat()}:{v.kind}"
            out += _rows(
                "peak_pause", rule, "peak_violation", sid, v.occurred_at, [v.agent], [], {"kind": v.kind}
            )

    # R-STATUS (a): left the seat without choosing a pause reason
    for pz in inp.pauses:
        if pz.reason.strip():
            continue
        rule = policy_at(pz.started_at).fines.get("status_violation")
        if rule is not None:
            sid = f"{pz.agent}@{pz.queue}@{pz.started_at.isoformat()}:no_reason"
            out += _rows(
                "status_violation", rule, "pause", sid, pz.started_at, [pz.agent], [], {"what": "no_reason"}
            )

    out += _attendance(inp, shifts, policy_at, until)
    out += _line_tests(inp, shifts, policy_at, tz, until)
    out += _followup(inp, shifts, policy_at, tz, until)
    out.sort(key=lambda r: (r.occurred_at, r.id))
    return out


def _late_rows(
    policy_at: PolicyAt, kind: str, sid: str, shift: str, agent: str, at: datetime, by: timedelta
) -> list[LedgerRow]:
    """R-LATE prices a late login and an early logout alike: `kind` ("late" / "early") names the
    violation (`<sid>:<kind>`) and the detail key (`<kind>_s`, seconds)."""
    rule = policy_at(at).fines.get("late")
    if rule is None:
        return []
    detail = {"shift": shift, f"{kind}_s": round(by.total_seconds(), 3)}
    return _rows("late", rule, "shift", f"{sid}:{kind}", at, [agent], [], detail)


def _attendance(inp: FineInputs, shifts: Shifts, policy_at: PolicyAt, until: datetime) -> list[LedgerRow]:
    """R-LATE (login after shift start: known at the login; logout before shift end: known once the
    shift ended) and R-STATUS (b) (still logged in
    `logout_grace_min` after the agent's last shift of the day) for rostered agents. An agent with
    no login overlapping the shift was absent: that is not R-LATE's to price."""
    out: list[LedgerRow] = []
    by_agent: dict[str, list[Login]] = defaultdict(list)
    for x in inp.logins:
        by_agent[x.agent].append(x)
    last_end: dict[tuple[str, date], datetime] = {}
    for e, start, end in shifts.entries:
        p = policy_at(start)
        grace = timedelta(seconds=p.attendance.late_grace_s)
        for a in e.agents:
            k = (a, e.day)
            last_end[k] = max(last_end.get(k, end), end)
            mine = [
                x
                for x in by_agent.get(a, ())
                if x.login_at < end and (x.logout_at is None or x.logout_at > start)
            ]
            if not mine:
                continue
            sid = f"{e.day.isoformat()}:{e.shift}:{a}"
            if not any(x.login_at <= start + grace for x in mine):
                at = min(x.login_at for x in mine)
                out += _late_rows(policy_at, "late", sid, e.shift, a, at, at - start)
            if end <= until and not any(x.logout_at is None or x.logout_at >= end for x in mine):
                at = max(x.logout_at for x in mine if x.logout_at is not None)
                out += _late_rows(policy_at, "early", sid, e.shift, a, at, end - at)
    for (a, day), end in sorted(last_end.items()):
        p = policy_at(end)
        check = end + timedelta(minutes=p.attendance.logout_grace_min)
        if check > until:
            continue
        if any(
            x.login_at <= check and (x.logout_at is None or x.logout_at > check) for x in by_agent.get(a, ())
        ):
            rule = p.fines.get("status_violation")
            if rule is not None:
                out += _rows(
                    "status_violation",
                    rule,
                    "shift",
                    f"{day.isoformat()}:{a}:no_logout",
                    check,
                    [a],
                    [],
                    {"what": "no_logout"},
                )
    return out


def _line_tests(
    inp: FineInputs, shifts: Shifts, policy_at: PolicyAt, tz: tzinfo, until: datetime
) -> list[LedgerRow]:
    """R-LINE-TEST: each active line is tested once per shift slot a day; a staffed slot (rostered,
    or without a roster someone logged in) that ended with no test of a line is skipped (the shift's
    supervisor pays); a failed test is an alarm, not a fine."""
    done = {(t.line, t.day, t.slot) for t in inp.line_tests}
    out: list[LedgerRow] = []
    for day in inp.days:
        noon = datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=12)
        p = policy_at(noon)
        for s in p.shifts:
            w = shift_window(p, day, s.name, tz)
            if w is None or w[1] > until:
                continue
            staffed = [e for e, _st, _en in shifts.entries if e.day == day and e.shift == s.name]
            if staffed:
                sups = sorted({e.supervisor for e in staffed if e.supervisor})
            else:  # no roster: owed only if someone worked the shift; their supervisor answers for it
                there = {
                    x.agent
                    for x in inp.logins
                    if x.login_at < w[1] and (x.logout_at is None or x.logout_at > w[0])
                }
                if not there:
                    continue  # nobody on shift: nobody to test the lines, nobody to fine
                sups = sorted({inp.supervisor_of[a] for a in there if a in inp.supervisor_of})
            for line in inp.lines:
                if (line, day, s.name) in done:
                    continue
                rule = policy_at(w[1]).fines.get("line_test_skipped")
                if rule is not None:
                    out += _rows(
                        "line_test_skipped",
                        rule,
                        "line_test",
                        f"{day.isoformat()}:{s.name}:{line}",
                        w[1],
                        [],
                        sups[:1],
                        {"line": line, "slot": s.name},
                    )
    return out


def _followup(
    inp: FineInputs, shifts: Shifts, policy_at: PolicyAt, tz: tzinfo, until: datetime
) -> list[LedgerRow]:
    """R-FOLLOWUP: each agent rostered in a (Monday-based, site-local) week owes `weekly_quota`
    follow-up calls; each missing call costs `fine_per_missing_call`, priced at the week's end."""
    weeks: dict[date, set[str]] = defaultdict(set)
    for e, _s, _e in shifts.entries:
        weeks[e.day - timedelta(days=e.day.weekday())].update(e.agents)
    made: dict[tuple[date, str], int] = defaultdict(int)
    for agent, at in inp.followups:
        d = at.astimezone(tz).date()
        made[(d - timedelta(days=d.weekday()), agent)] += 1
    out: list[LedgerRow] = []
    for monday, agents in sorted(weeks.items()):
        end = datetime.combine(monday + timedelta(days=7), datetime.min.time(), tz)
        if end > until:
            continue
        at = end - timedelta(microseconds=1)
        fp = policy_at(at).followup
        for a in sorted(agents):
            missing = fp.weekly_quota - made[(monday, a)]
            if missing <= 0:
                continue
            rule = FineRule(
                agent=fp.fine_per_missing_call * Decimal(missing),
                supervisor=Decimal(0),
                description="回访不足 follow-up shortfall (R-FOLLOWUP)",
            )
            out += _rows(
                "followup_shortfall",
                rule,
                "week",
                f"{monday.isoformat()}:{a}",
                at,
                [a],
                [],
                {"quota": fp.weekly_quota, "made": made[(monday, a)], "missing": missing},
            )
    return out


# ---- dismissal flags ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DismissalFlag:
    agent: str
    rule: str
    month: date
    count: int
    flagged_at: datetime


def dismissal_flags(
    rows: Iterable[LedgerRow], waived: set[str], policy_at: PolicyAt, tz: tzinfo
) -> list[DismissalFlag]:
    """An agent reaches a rule's `dismissal_after` (3 ignored requests) within one site-local month:
    flagged at the violation that reached it. Waived rows do not count."""
    seen: dict[tuple[str, str, date], list[datetime]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r.occurred_at, r.id)):
        if r.role != "agent" or r.person is None or r.id in waived:
            continue
        rule = policy_at(r.occurred_at).fines.get(r.rule)
        if rule is None or rule.dismissal_after is None:
            continue
        local = r.occurred_at.astimezone(tz).date()
        seen[(r.person, r.rule, local.replace(day=1))].append(r.occurred_at)
    out: list[DismissalFlag] = []
    for (agent, rule_key, month), times in sorted(seen.items()):
        need = policy_at(times[-1]).fines[rule_key].dismissal_after or 0
        if len(times) >= need:
            out.append(DismissalFlag(agent, rule_key, month, len(times), times[need - 1]))
    return out
