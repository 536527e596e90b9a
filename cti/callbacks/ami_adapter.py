"""Adapters from the AMI client (cti.ami.client.AMIClient) to the callables the dispatcher and the
peak guard take, so those stay testable without a socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cti.ami.client import AMIClient, NotConnected
from cti.ami.headers import first
from cti.callbacks.originate import OriginateNotSent, OriginateRequest


def _plain(msg: Mapping[str, Any]) -> dict[str, str]:
    return {k: first(msg, k) for k in msg}


def ami_originate(client: AMIClient) -> Callable[[OriginateRequest], Awaitable[Mapping[str, Any]]]:
    """`originate(request)` for the Dispatcher: sends the Originate, returns the reply frame (with
    the ActionID the client chose). NotConnected means it never left: OriginateNotSent. Every other
    failure (timeout, connection lost mid-action) propagates: outcome unknown, never re-sent."""

    async def originate(req: OriginateRequest) -> Mapping[str, Any]:
        try:
            reply = await client.action("Originate", req.headers(), check=False)
        except NotConnected as e:
            raise OriginateNotSent(str(e)) from e
        return _plain(reply.response)

    return originate


def ami_action(client: AMIClient) -> Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, Any]]]:
    """`ami_action(name, headers)` for the PeakPauseGuard (QueuePause / QueueAdd)."""

    async def action(name: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        reply = await client.action(name, dict(headers), check=False)
        return _plain(reply.response)

    return action
