"""`cti demo`: the simulated PBX runs a scenario — a TV-ad evening by default, or an outbound campaign
day (`--scenario scenarios/outbound_day.toml`) — against the whole CTI server and the monitor, at a
speed a person can watch, on the embedded PostgreSQL (or the server in DATABASE_URL), and ends with
the summary (for an outbound day, the funnel). It uses its own database, `cti_demo`, made afresh on
every run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import click

from cti.cluster.rehearsal import ClusterRehearsal
from cti.commands.common import run, settings_from
from cti.db.connect import database_url
from cti.db.migrate import migrate
from cti.db.scratch import with_database
from cti.policy import load_policy
from cti.rehearsal import Rehearsal
from cti.sim.scenario import load_scenario
from cti.web.auth import add_user

DEMO_DB = "cti_demo"


def default_scenario() -> Path:
    here = Path(__file__).resolve().parents[2] / "scenarios" / "tv_evening.toml"
    return here if here.is_file() else Path(str(resources.files("cti").joinpath("scenarios/tv_evening.toml")))


def _line(p: dict[str, Any], tz: ZoneInfo) -> str:
    """One progress line, its time in the site's time zone (settings), not the machine's (UTC)."""
    t = p["sim_time"].astimezone(tz).strftime("%H:%M")
    line = (
        f"[{t}] 来电 offered {p.get('offered', 0):>5}  接通 answered {p.get('answered', 0):>5}  "
        f"放弃 abandoned {p.get('abandoned', 0):>4}  待回拨 callbacks open {p['callbacks_open']:>4}"
    )
    ob = p.get("outbound")
    if ob and ob.get("dials"):
        line += (
            f"  | 外呼 dials {ob['dials']:>6}  接通坐席 connects {ob['connects']:>5}  "
            f"放弃 abandoned {ob['abandoned']:>4}  成交 sales {ob['sales']:>4}"
        )
    return line


def funnel_lines(ob: dict[str, Any]) -> list[str]:
    """The outbound day's funnel, Chinese first (R-FUNNEL's names, seed 001 附件4)."""
    return [
        f"外呼量 dials                {ob['dials']:>8}",
        f"接通量 connects             {ob['connects']:>8}   (客户接听 answered {ob['answered']})",
        f"接通率 connect rate         {ob['connect_rate']:>8.1%}",
        f"有效通话量 talks            {ob['talks']:>8}",
        f"订单量 orders               {ob['orders']:>8}",
        f"放弃率 abandon rate         {ob['abandon_rate_day']:>8.2%}   "
        f"(滚动窗口最大 max over rolling windows {ob['abandon_rate_max_window']:.2%})",
        f"来电等待时外呼 dials while inbound waiting {ob['dials_while_inbound_waiting']}",
        f"合规违规 compliance violations {ob['compliance_violations']}",
    ]


@click.command()
@click.option("--scenario", "scenario_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Scenario TOML (default: scenarios/tv_evening.toml).")  # fmt: skip
@click.option(
    "--speed", type=float, default=20.0, show_default=True, help="Simulated seconds per wall second."
)
@click.option("--web-port", type=int, default=None, help="Monitor port (default: settings web.port, 8080).")
@click.option("--processes", type=click.IntRange(1, 8), default=1, show_default=True,
              help="CTI processes on one database; more than 1 runs them as subprocesses.")  # fmt: skip
@click.option("--kill-leader-after-ad", "kill_after", type=float, default=None,
              help="Drill: SIGKILL the leader this many simulated seconds into the ad.")  # fmt: skip
@click.pass_context
def demo(
    ctx: click.Context, scenario_path: str | None, speed: float, web_port: int | None, processes: int,
    kill_after: float | None,
) -> None:  # fmt: skip
    """Run a scenario on a simulated PBX against the CTI server, with the live monitor: a TV-ad
    evening by default, or an outbound campaign day (scenarios/outbound_day.toml)."""
    if kill_after is not None and processes < 2:
        raise click.UsageError("--kill-leader-after-ad needs --processes 2 or more (someone must take over)")
    settings = settings_from(ctx)
    if web_port is not None:
        settings = settings.model_copy(update={"web": settings.web.model_copy(update={"port": web_port})})
    scenario = load_scenario(scenario_path or default_scenario())
    if scenario.outbound is not None and processes > 1:
        raise click.UsageError("an outbound scenario runs with --processes 1 (its set-up is not shared)")
    given = settings.demo_password
    password = given.get_secret_value() if given else secrets.token_urlsafe(9)

    async def go() -> dict[str, Any]:
        async with database_url(settings) as server_url:
            admin = await asyncpg.connect(server_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{DEMO_DB}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{DEMO_DB}"')
            finally:
                await admin.close()
            dsn = with_database(server_url, DEMO_DB)
            conn = await asyncpg.connect(dsn)
            try:
                done = await migrate(conn)
                await add_user(
                    conn, "demo", password, "supervisor", display_name="演示主管", can_reveal_numbers=True
                )
            finally:
                await conn.close()
            click.echo(f"database {DEMO_DB}: {len(done)} migrations applied")
            hours = scenario.duration_s / 3600
            click.echo(
                f"scenario {scenario.name}: {len(scenario.agents)} agents, {len(scenario.ads)} TV ad(s)"
                + (f", campaign of {scenario.outbound.contacts} contacts" if scenario.outbound else "")
            )
            click.echo(f"{hours:g} simulated hours at {speed:g}x")
            url = f"http://{settings.web.host}:{settings.web.port}/"
            click.echo(f"monitor 监控: {url}  user demo, password {password}")
            progress = lambda p: click.echo(_line(p, settings.tz))  # noqa: E731
            policy = load_policy(settings.policy_file)
            reh: Rehearsal | ClusterRehearsal
            if processes > 1:
                click.echo(
                    f"{processes} CTI processes (FastAGI and the monitor on the first)"
                    + (f"; the leader is killed {kill_after:g} s into the ad" if kill_after else "")
                )
                reh = ClusterRehearsal(Path(scenario_path or default_scenario()), dsn, settings, policy,
                                       processes=processes, speed=speed, kill_leader_after_ad_s=kill_after,
                                       progress=progress, sample_every_s=300.0,
                                       web_port=settings.web.port)  # fmt: skip
            else:
                reh = Rehearsal(scenario, dsn, settings, policy, speed=speed, web=True, progress=progress,
                                sample_every_s=300.0)  # fmt: skip
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, reh.stop)
            return await reh.run()

    summary = run(go())
    ob = summary.get("outbound")
    click.echo("\n总结 Summary" if ob else "\n晚间总结 Evening summary")
    click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    if ob:
        click.echo("\n外呼漏斗 Outbound funnel")
        for line in funnel_lines(ob):
            click.echo(line)
