"""Report pages (报表) and their APIs: the day/month page with server-drawn SVG charts, call-log
downloads (CSV with BOM, streamed XLSX), the order system's order feed, waivers.

Roles: supervisors, managers and admins read reports; full numbers in a download only for a user
granted `can_reveal_numbers`, and every download is logged; waivers are a supervisor/manager right.
"""

from __future__ import annotations

import tempfile
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from cti.fines import repo as fines_repo
from cti.fines.attendance import RosterError, set_roster
from cti.fines.money import yuan
from cti.fines.rules import RosterEntry
from cti.orders.imports import OrderImportError, parse_row, store
from cti.policy import load_policy_from_db
from cti.reports import exports
from cti.reports.pages import bounds, report
from cti.web import auth, charts
from cti.web.app import SERVICES, _need
from cti.web.replies import day_param, json_error, json_reply

ORDER_FEED_ROLES = frozenset({"manager", "admin"})
WAIVE_ROLES = frozenset(fines_repo.WAIVER_ROLES)
RULE_NAMES = {
    "missed_call": "漏接",
    "ignored_request": "未转指定坐席",
    "agent_hung_up_first": "先挂机",
    "peak_pause": "高峰封线",
    "late": "迟到早退",
    "line_test_skipped": "未测线路",
    "slow_response": "30秒未接",
    "status_violation": "状态违规",
    "followup_shortfall": "回访不足",
}


async def _data(request: web.Request, period: str) -> dict[str, Any]:
    svc = request.app[SERVICES]
    async with svc.pool.acquire() as conn:
        policy = await load_policy_from_db(conn)
        return await report(conn, day_param(request), period, svc.tz, policy)


async def api_report(request: web.Request) -> web.Response:
    _need(request, auth.MONITOR_ROLES)
    period = request.match_info["period"]
    if period not in ("day", "month"):
        raise json_error(web.HTTPNotFound, "period must be day or month")
    data = await _data(request, period)
    return json_reply(data)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _num(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:.1f}{unit}"


def render(data: dict[str, Any], day: date) -> str:
    t = data["total"] or {}
    step = "by_hour" if "by_hour" in data else "by_day"
    rows = data[step]
    labels = [r["key"][-5:] if step == "by_hour" else r["key"][-2:] for r in rows]
    calls_chart = charts.bars(
        labels,
        [("来电 offered", [r["offered"] for r in rows]), ("接通 answered", [r["answered"] for r in rows])],
        line=("两声内接听率 SL", [r["sl_two_rings"] for r in rows]),
        title="来电与服务水平 Calls and service level",
    )
    did_chart = charts.bars(
        [r["key"] for r in data["by_did"]],
        [("来电 calls", [r["calls"] for r in data["by_did"]])],
        title="各号码来电(广告效果) Calls per DID (the ad's channel)",
    )
    fr = data["fines"]["fen_by_rule"]
    fines_rule = charts.bars(
        [RULE_NAMES.get(k, k) for k in fr],
        [("元", [v / 100 for v in fr.values()])],
        title="罚款(按规则) Fines by rule",
    )
    fp = data["fines"]["fen_by_person"]
    fines_agent = charts.bars(
        list(fp), [("元", [v / 100 for v in fp.values()])], title="罚款(按人) Fines by agent"
    )
    race = data["race"]
    agents = sorted({a for p in race.values() for a in p})
    race_chart = charts.bars(
        agents,
        [
            (f"{n} {p}", [race[p].get(a, 0) for a in agents])
            for p, n in (("day", "日"), ("week", "周"), ("month", "月"))
        ],
        title="冠军榜(有效订单) Champions' race (effective orders)",
    )
    agent_rows = "".join(
        f"<tr><td>{escape(r['key'])}</td><td>{r['answered']}</td><td>{_num(r['aht_s'], 's')}</td>"
        f"<td>{_pct(data['occupancy'].get(r['key']))}</td><td>{yuan(fp.get(r['key'], 0))}</td></tr>"
        for r in data["by_agent"]
        if r["key"] != "-"
    )
    cb = data["callbacks"]
    kind = "日报" if step == "by_hour" else "月报"
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{kind} 报表 Report {day}</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 8px;text-align:right}}.k{{display:inline-block;margin-right:2em}}</style></head><body>
<h1>{kind} Report — {day}</h1>
<form><input type="date" name="day" value="{day}"> <button>查看 View</button>
<a href="?day={day}&period=day">日 day</a> <a href="?day={day}&period=month">月 month</a>
<a href="/reports/call-log.csv?day={day}">通话记录 CSV</a>
<a href="/reports/call-log.xlsx?day={day}">XLSX</a></form>
<p><span class="k">来电 Offered <b>{t.get("offered", 0)}</b></span>
<span class="k">接通 Answered <b>{t.get("answered", 0)}</b></span>
<span class="k">放弃 Abandoned <b>{t.get("abandoned", 0)}</b>
 (平均 {_num(t.get("abandon_wait_avg_s"), "s")})</span>
<span class="k">两声内 SL <b>{_pct(t.get("sl_two_rings"))}</b></span>
<span class="k">30秒内 <b>{_pct(t.get("within_30s"))}</b></span>
<span class="k">ASA <b>{_num(t.get("asa_s"), "s")}</b></span>
<span class="k">AHT <b>{_num(t.get("aht_s"), "s")}</b></span>
<span class="k">回拨 Callbacks {cb["created"]} / 完成 {cb["completed"]}</span></p>
{calls_chart}<br>{did_chart}<br>{fines_rule}<br>{fines_agent}<br>{race_chart}
<h2>坐席 Agents</h2><table><tr><th>坐席 agent</th><th>接通 answered</th><th>AHT</th><th>占用率 occupancy</th>
<th>罚款 fines 元</th></tr>{agent_rows}</table></body></html>"""


async def report_page(request: web.Request) -> web.Response:
    _need(request, auth.MONITOR_ROLES)
    period = request.query.get("period", "day")
    if period not in ("day", "month"):
        period = "day"
    data = await _data(request, period)
    return web.Response(text=render(data, day_param(request)), content_type="text/html")


async def call_log(request: web.Request) -> web.StreamResponse:
    """The day's call log; `full=1` gives full numbers to a user granted them. Logged either way."""
    user = _need(request, auth.MONITOR_ROLES)
    svc = request.app[SERVICES]
    day, fmt = day_param(request), request.match_info["fmt"]
    full = request.query.get("full") == "1"
    if full and not user.can_reveal_numbers:
        raise json_error(web.HTTPForbidden, "not granted / 无查看完整号码权限")
    since, until = bounds(day, "day", svc.tz)
    name = f"call-log-{day}{'-full' if full else ''}.{fmt}"
    n = 0
    async with svc.pool.acquire() as conn:
        if fmt == "csv":
            resp = web.StreamResponse(
                headers={
                    "Content-Type": "text/csv; charset=utf-8",
                    "Content-Disposition": f"attachment; filename={name}",
                }
            )
            await resp.prepare(request)
            batch: list[list[Any]] = []
            first = True

            async def flush() -> None:
                header = exports.CALL_LOG_COLUMNS if first else ()
                await resp.write("".join(exports.csv_chunks(header, batch, bom=first)).encode())

            async for row in exports.call_log_rows(conn, since, until, svc.tz, full):
                batch.append(row)
                n += 1
                if len(batch) >= 1000:
                    await flush()
                    first, batch = False, []
            await flush()
            # before the end of the body: the client cannot hold the whole file before the log row
            await exports.log_download(conn, svc.clock.now(), user.username, user.role, name, full, n)
        else:
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / name
                rows = exports.call_log_rows(conn, since, until, svc.tz, full)
                n = await exports.write_xlsx_stream(path, exports.CALL_LOG_COLUMNS, rows, str(day))
                # logged before a byte leaves: a download that reached the user is always in the log
                await exports.log_download(conn, svc.clock.now(), user.username, user.role, name, full, n)
                resp = web.FileResponse(
                    path,
                    headers={
                        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        "Content-Disposition": f"attachment; filename={name}",
                    },
                )
                await resp.prepare(request)
                await resp.write_eof()
    if fmt == "csv":
        await resp.write_eof()
    return resp


async def api_orders(request: web.Request) -> web.Response:
    """The order system posts a JSON list of orders (same fields as the CSV import)."""
    _need(request, ORDER_FEED_ROLES)
    svc = request.app[SERVICES]
    try:
        body = await request.json()
    except ValueError:
        raise json_error(web.HTTPBadRequest, "body must be JSON / 请求体必须是JSON") from None
    if not isinstance(body, list) or not all(isinstance(o, dict) for o in body):
        raise json_error(web.HTTPBadRequest, "body must be a list of orders")
    try:
        orders = [parse_row(o, f"order {i + 1}", svc.tz) for i, o in enumerate(body)]
        async with svc.pool.acquire() as conn:
            counts = await store(conn, orders, "api")
    except OrderImportError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    return web.json_response(counts)


async def api_waive(request: web.Request) -> web.Response:
    user = _need(request, WAIVE_ROLES)
    svc = request.app[SERVICES]
    body = await request.json()
    if not isinstance(body, dict):
        raise json_error(web.HTTPBadRequest, "body must be an object")
    try:
        async with svc.pool.acquire() as conn:
            await fines_repo.waive(conn, str(body.get("ledger_id", "")), user.username, user.role,
                                   str(body.get("reason", "")), svc.clock.now(), svc.tz,
                                   undo=bool(body.get("undo")))  # fmt: skip
    except fines_repo.WaiverError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    return web.json_response({"ok": True})


async def api_roster(request: web.Request) -> web.Response:
    """Set roster entries: [{day, shift, group?, supervisor?, agents: [...]}, ...]; all or none."""
    user = _need(request, WAIVE_ROLES)
    svc = request.app[SERVICES]
    try:
        body = await request.json()
        entries = [
            RosterEntry(date.fromisoformat(str(e["day"])), str(e["shift"]), str(e.get("group") or "default"),
                        e.get("supervisor") or None, tuple(str(a) for a in e["agents"]))
            for e in body
        ]  # fmt: skip
    except (ValueError, KeyError, TypeError) as e:
        raise json_error(
            web.HTTPBadRequest, f"roster entries need day (YYYY-MM-DD), shift, agents: {e}"
        ) from None
    try:
        async with svc.pool.acquire() as conn:
            n = await set_roster(conn, entries, user.username)
    except RosterError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    return web.json_response({"saved": n})


def setup(app: web.Application) -> None:
    app.router.add_get("/reports", report_page)
    app.router.add_get("/api/reports/{period}", api_report)
    app.router.add_get("/reports/call-log.{fmt:csv|xlsx}", call_log)
    app.router.add_post("/api/orders", api_orders)
    app.router.add_post("/api/fines/waive", api_waive)
    app.router.add_post("/api/roster", api_roster)
