"""Sans-IO bookkeeping of AMI actions, h11-style: fed messages, returns what they mean. No sockets, no
asyncio, no clock; the socket class (`cti.ami.client.AMIClient`) does the I/O and the waiting.

- `PendingActions`: which actions await a reply, matched by ActionID; a list action's reply
  (`EventList: start`) opens a collection that its `EventList: Complete` event closes. A `Response:
  Error` is an answer like any other (during the resync after an Asterisk restart, `Invalid/unknown
  command` to QueueStatus is Asterisk still loading app_queue, not a lost connection: issue 10).
- `ping_verdict`: a Ping with no reply in time means a dead peer only when the link was silent.
- `backoff_delay`: the wait before reconnect attempt n.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cti.ami.codec import Message


@dataclass
class ActionReply:
    """The response to an action and, for list actions, the list items (without the *Complete)."""

    response: Message
    items: list[Message] = field(default_factory=list)
    complete: Message | None = None
    action_id: str = ""  # the ActionID we sent (an OriginateResponse event carries it later)

    @property
    def ok(self) -> bool:
        return self.response.first("Response") in ("Success", "Goodbye", "Follows")


@dataclass(frozen=True)
class Routed:
    """What one received message is.

    completed: it finished the action `action_id` (`reply` is the whole answer);
    consumed:  part of an answer still being collected (the list's start, an item);
    event:     an event for the subscribers (also one carrying an ActionID, e.g. OriginateResponse);
    ignored:   a reply nobody waits for any more (the action timed out, or the connection it was sent
               on is gone): never an event, never someone else's answer."""

    kind: Literal["completed", "consumed", "event", "ignored"]
    action_id: str | None = None
    reply: ActionReply | None = None


_CONSUMED = Routed("consumed")
_EVENT = Routed("event")
_IGNORED = Routed("ignored")


class _Pending:
    __slots__ = ("action", "items", "listing", "response")

    def __init__(self, action: str) -> None:
        self.action = action
        self.response: Message | None = None
        self.items: list[Message] = []
        self.listing = False


class PendingActions:
    """The actions sent on the current connection and not yet answered."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._pending

    def add(self, action_id: str, action: str) -> None:
        """`action` was sent with `action_id`; its reply is awaited."""
        self._pending[action_id] = _Pending(action)

    def forget(self, action_id: str) -> None:
        """Stop waiting (answered, or timed out: a late reply is then `ignored`)."""
        self._pending.pop(action_id, None)

    def drop_all(self) -> list[tuple[str, str]]:
        """The connection is gone: every action in flight, as (ActionID, action), for the caller to
        fail as 'outcome unknown'. None is re-sent; a late reply to one of them is `ignored`."""
        out = [(aid, p.action) for aid, p in self._pending.items()]
        self._pending.clear()
        return out

    def receive(self, msg: Message) -> Routed:
        aid = msg.get("ActionID")
        is_event = "Event" in msg
        if not isinstance(aid, str):
            return _EVENT if is_event else _IGNORED
        p = self._pending.get(aid)
        if p is None:
            return _EVENT if is_event else _IGNORED
        if "Response" in msg and not is_event and p.response is None:
            p.response = msg
            if msg.get("EventList") == "start":
                p.listing = True
                return _CONSUMED
            self._pending.pop(aid)
            return Routed("completed", aid, ActionReply(msg, action_id=aid))
        if p.listing and is_event:
            if msg.get("EventList") == "Complete":
                assert p.response is not None
                self._pending.pop(aid)
                return Routed("completed", aid, ActionReply(p.response, p.items, msg, action_id=aid))
            p.items.append(msg)
            return _CONSUMED
        return _EVENT if is_event else _IGNORED


def action_frame(
    name: str, action_id: str, headers: Mapping[str, str | list[str]] | None = None
) -> dict[str, str | list[str]]:
    """The frame for one action: `Action` and our `ActionID` first; the caller's own Action/ActionID
    headers (any case) are dropped, so a reply can only ever match the action that asked."""
    frame: dict[str, str | list[str]] = {"Action": name, "ActionID": action_id}
    for k, v in (headers or {}).items():
        if k.lower() not in ("action", "actionid"):
            frame[k] = v
    return frame


def ping_verdict(*, quiet_s: float, ping_timeout: float, subscribers_held: bool) -> Literal["late", "dead"]:
    """A Ping got no reply within `ping_timeout`. Its reply may sit behind events not read yet: a
    peer that sent something within the timeout, or a reader held back by our own busy subscribers,
    is behind, not dead (reconnecting would add a resync to an overloaded process). Silence is what a
    half-open link shows."""
    if quiet_s < ping_timeout or subscribers_held:
        return "late"
    return "dead"


def backoff_delay(attempt: int, *, initial: float, maximum: float, jitter: float) -> float:
    """The wait before reconnect attempt `attempt` (0-based): doubling from `initial`, capped at
    `maximum`, scaled by `jitter` in [0, 1) into [base/2, base) ("equal jitter": never 0, and several
    CTI processes never reconnect in lock-step)."""
    base = min(maximum, initial * (2 ** min(attempt, 30)))
    return base * (0.5 + jitter / 2)
