"""FastAGI server on loop.create_server (why our own: docs/decisions/0300-own-fastagi-server.md; why
a protocol rather than asyncio.start_server's streams: 0301-route-hot-path.md).

Per connection: read the `agi_` block (a probe that closes early is dropped quietly), run the
handler registered for the script name under a deadline, and on any exception or timeout set the
fallback variables so the call still reaches the queue. Then half-close and read until Asterisk
closes (it writes `HANGUP` first, capture 01), so Asterisk never sees a reset.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from cti.agi.connection import AgiConnection
from cti.agi.context import AgiContext
from cti.agi.protocol import AgiCommandError, AgiHangup, AgiProtocolError
from cti.agi.registry import Registry, default_registry
from cti.agi.session import AgiSession, read_environment
from cti.masking import mask_number
from cti.metrics import observe_agi
from cti.routing.inbound import DEFAULT_QUEUE, UNKNOWN_DISPLAY, classify_number

log = structlog.get_logger(__name__)

FALLBACK_ROUTE = "queue"


@dataclass
class ServerStats:
    sessions: int = 0
    probes: int = 0  # connections that closed or stalled before the end of the agi_ block
    completed: int = 0
    hangups: int = 0
    fallbacks: int = 0


class FastAgiServer:
    def __init__(
        self,
        ctx: AgiContext,
        registry: Registry | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        header_timeout_s: float = 5.0,
        fallback_timeout_s: float = 2.0,
        close_wait_s: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.registry = registry or default_registry()
        self.host = host if host is not None else ctx.settings.agi.host
        self.port = port if port is not None else ctx.settings.agi.port
        self.session_timeout_s = ctx.settings.agi.session_timeout_s
        self.header_timeout_s = header_timeout_s
        self.fallback_timeout_s = fallback_timeout_s
        self.close_wait_s = close_wait_s
        self.stats = ServerStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._conns: set[AgiConnection] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AgiConnection(self._on_open, self._conns.discard),
            self.host,
            self.port,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fastagi listening", host=self.host, port=self.port, scripts=self.registry.names())

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in list(self._conns):
            c.abort()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    def _on_open(self, conn: AgiConnection) -> None:
        self._conns.add(conn)
        task = conn.loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: AgiConnection) -> None:
        try:
            await self._session(conn)
        finally:
            conn.finish(self.close_wait_s)

    async def _session(self, conn: AgiConnection) -> None:
        try:
            env = await read_environment(conn, self.header_timeout_s)
        except (AgiHangup, TimeoutError, AgiProtocolError) as e:
            # health checks and port scanners: not a call, nothing to fall back for
            self.stats.probes += 1
            log.debug("fastagi connection without a complete agi_ block", reason=type(e).__name__)
            return
        self.stats.sessions += 1
        session = AgiSession(conn, env)
        script = env.script
        spec = self.registry.get(script)
        if spec is None:
            log.warning(
                "unknown AGI script; call sent to the queue", script=script, uniqueid=session.uniqueid
            )
            await self._fallback(session, "unknown_script", "")
            return
        timeout = spec.timeout_s or self.session_timeout_s
        # asyncio.timeout, not wait_for: no extra task per session (the hot path)
        timed_out = False
        started = time.perf_counter()
        outcome = "fallback"
        try:
            async with asyncio.timeout(timeout) as deadline:
                await spec.run(session, self.ctx)
            self.stats.completed += 1
            outcome = "completed"
        except AgiHangup as e:
            self.stats.hangups += 1
            outcome = "hangup"
            log.info("caller hung up during AGI", script=script, uniqueid=session.uniqueid, detail=str(e))
        except TimeoutError:
            timed_out = deadline.expired()
            if not timed_out:  # a TimeoutError raised inside the handler (a DB call): an ordinary failure
                log.exception(
                    "AGI handler failed; call sent to the queue", script=script, uniqueid=session.uniqueid
                )
                await self._fallback(session, "error", "TimeoutError inside the handler")
        except Exception as e:
            log.exception(
                "AGI handler failed; call sent to the queue", script=script, uniqueid=session.uniqueid
            )
            await self._fallback(session, "error", f"{type(e).__name__}: {e}")
        # registered scripts only: an unknown name from the wire must not become a label
        observe_agi(script, time.perf_counter() - started, outcome)
        if timed_out:
            log.error(
                "AGI handler timed out; call sent to the queue", script=script, uniqueid=session.uniqueid
            )
            await self._fallback(session, "timeout", f"no decision within {timeout} s")

    async def _fallback(self, session: AgiSession, reason: str, detail: str) -> None:
        """Leave the call somewhere safe: the default queue, masked. Then record that it happened."""
        self.stats.fallbacks += 1
        env = session.env
        number = classify_number(env.get("agi_callerid"))
        masked = mask_number(number.number) if number.number else UNKNOWN_DISPLAY
        done = False
        if not session.hung_up:
            try:
                async with asyncio.timeout(self.fallback_timeout_s):
                    await session.drain_pending()
                    await session.set_variable("CALLERID(name)", masked)
                    await session.set_variable("CTI_MASKED", masked)
                    await session.set_variable("CTI_QUEUE", DEFAULT_QUEUE)
                    await session.set_variable("CTI_PREFERRED", "")
                    await session.set_variable("CTI_ROUTE", FALLBACK_ROUTE)
                done = True
            except (AgiHangup, AgiCommandError, AgiProtocolError, TimeoutError, OSError) as e:
                log.warning("fallback variables not set; the dialplan's own fallback applies", error=str(e))
        await self.ctx.emit(
            "agi_fallback",
            {
                "script": env.script,
                "reason": reason,
                "detail": detail,
                "number": number.number,
                "number_kind": number.kind.value,
                "did": env.get("agi_dnid") or None,
                "queue": DEFAULT_QUEUE,
                "variables_set": done,
            },
            key=f"agi:fallback:{env.script}:{session.uniqueid}" if session.uniqueid else None,
            uniqueid=session.uniqueid,
            queue=DEFAULT_QUEUE,
        )
