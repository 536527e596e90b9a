"""The Asterisk CLI behind AMI `Action: Command`: the few commands the CTI and its operators send
(`core show version|channels concise|uptime`, `queue show [q]`). Capture 07 has `queue show sales` and
`core show channels concise` and the error for an unknown command; 00-system `core show version`."""

from __future__ import annotations

from cti.sim.model import STATE_DESC
from cti.sim.pbx import Pbx


def run(pbx: Pbx, cmd: str) -> list[str] | None:
    """The output lines of one CLI command, or None for a command the simulator does not know."""
    e, app_queue = pbx.core, pbx.app_queue
    words = cmd.split()
    if cmd == "core show version":
        return ["Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-23 09:43:26 UTC"]
    if cmd == "core show channels concise":
        out = []
        for c in e.channels.values():
            secs = int(e.now - c.created)
            out.append(
                "!".join(
                    [
                        c.name,
                        c.context,
                        c.exten,
                        str(c.priority),
                        STATE_DESC.get(c.state, "Unknown"),
                        c.app,
                        c.appdata,
                        c.cid_num if c.cid_num != "<unknown>" else "",
                        "",
                        "",
                        "3",
                        str(secs),
                        c.bridge.uniqueid if c.bridge else "(None)",
                        c.uniqueid,
                    ]
                )
            )
        return out
    if words[:2] == ["queue", "show"] and len(words) <= 3:
        out = []
        for q in app_queue.queues.values():
            if len(words) == 3 and q.name != words[2]:
                continue
            hold = int(q.hold_total / q.connected) if q.connected else 0
            talk = int(q.talk_total / q.completed) if q.completed else 0
            out.append(
                f"{q.name} has {len(q.entries)} calls (max unlimited) in '{q.cfg.strategy}' strategy "
                f"({hold}s holdtime, {talk}s talktime), W:0, C:{q.completed}, A:{q.abandoned}, "
                f"SL:0.0%, SL2:0.0% within {q.cfg.servicelevel}s"
            )
            out.append("   Members: " if q.members else "   No Members")
            for m in q.members.values():
                st = app_queue.member_status(m)
                desc = {1: "Not in use", 2: "In use", 5: "Unavailable", 6: "Ringing"}.get(st, "Unknown")
                pen = f" with penalty {m.penalty}" if m.penalty else ""
                flags = " (paused)" if m.paused else ""
                call = " (in call)" if m.in_call else ""
                taken = f"has taken {m.calls_taken} calls" if m.calls_taken else "has taken no calls yet"
                out.append(
                    f"      {m.name} ({m.interface}){pen} (ringinuse disabled) (dynamic){flags}{call} "
                    f"({desc}) {taken} (login was {int(e.now) - m.login_time} secs ago)"
                )
            if q.entries:
                out.append("   Callers: ")
                for i, en in enumerate(q.entries, 1):
                    w = int(e.now - en.joined)
                    out.append(f"      {i}. {en.call.caller.name} (wait: {w // 60}:{w % 60:02d}, prio: 0)")
            else:
                out.append("   No Callers")
            out.append("")
        return out if out else [f"No such queue: {words[2]}."]
    if cmd == "core show uptime":
        up = int(e.now - e.start_time)
        return [f"System uptime: {up} seconds"]
    return None
