"""Build the DeskService from a running CtiServer (kept here so cti/app.py gains one call)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cti.desk.service import DeskService

if TYPE_CHECKING:
    from cti.app import CtiServer

__all__ = ["DeskService", "desk_service"]


def desk_service(server: CtiServer, **extra: Any) -> DeskService:
    assert server.pool is not None and server.agents is not None and server.store is not None
    ami = server.ami
    peak = server.peak
    store = server.store
    return DeskService(
        server.pool,
        live=server.live,
        agents=server.agents,
        policy=server.policy,
        clock=server.clock,
        tz=server.settings.tz,
        events=store,
        ami_action=server.agent_action if ami is not None else None,  # through the agent's PBX
        ami_connected=lambda: ami is not None and ami.connected,
        spool_files=lambda: len(store.spool.segments()),
        in_peak=lambda: peak is not None and peak.in_peak,
        default_did=server.default_did,
        **extra,
    )
