"""Quality pages and APIs (issue 17): the period's review sample, score forms, scoring, recording
playback, and the quality report.

Roles: supervisors, managers and admins review (draw, add calls by hand, play, score); managers and
admins edit forms; an agent sees their own scores and comments and nobody else's (asking for another
agent's is 403, not an empty list). Every playback request (a seek is a new Range request) is an
audit row in `recording_playbacks`. A recording is served only from inside the recordings directory
(the fixed part of recording.path_pattern): a row's path that leads elsewhere is refused.
"""

from __future__ import annotations

import tempfile
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from cti.config import RecordingSettings
from cti.policy import load_policy_from_db
from cti.quality import repo
from cti.quality.forms import FormError
from cti.recording_files import fixed_dir, inside
from cti.reports import exports
from cti.reports import quality as report
from cti.web import auth
from cti.web.app import SERVICES, USER, _need, _static
from cti.web.replies import day_param, json_error, json_reply

REVIEW_ROLES = auth.MONITOR_ROLES  # supervisor, manager, admin
FORM_ROLES = frozenset({"manager", "admin"})
RECORDINGS_DIR = web.AppKey("recordings_dir", Path)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise json_error(web.HTTPBadRequest, "body must be JSON / 请求体必须是JSON") from None
    if not isinstance(body, dict):
        raise json_error(web.HTTPBadRequest, "body must be an object")
    return body


def _whose(request: web.Request) -> str | None:
    """The agent whose data may be shown: an agent sees only their own; reviewers any (or all)."""
    user: auth.User = request[USER]
    asked = request.query.get("agent") or None
    if user.role == "agent":
        if user.agent_id is None or (asked is not None and asked != user.agent_id):
            raise json_error(
                web.HTTPForbidden, "an agent sees only their own scores / 只能查看本人的质检结果"
            )
        return user.agent_id
    _need(request, REVIEW_ROLES)
    return asked


async def page(request: web.Request) -> web.Response:
    return web.Response(text=_static("quality.html"), content_type="text/html")


async def api_samples(request: web.Request) -> web.Response:
    """The period's sample (reviewers: everyone's or ?agent=; an agent: their own, with scores)."""
    agent = _whose(request)
    svc = request.app[SERVICES]
    async with svc.pool.acquire() as conn:
        qa = (await load_policy_from_db(conn)).qa
        start, _, _ = repo.period_bounds(day_param(request), qa.period, svc.tz)
        rows = await repo.samples(conn, qa.period, start, agent=agent)
    user: auth.User = request[USER]
    me = {"username": user.username, "role": user.role, "agent_id": user.agent_id}
    return json_reply({"me": me, "period": qa.period, "period_start": start, "samples": rows})


async def api_my_scores(request: web.Request) -> web.Response:
    agent = _whose(request)
    if agent is None:
        raise json_error(web.HTTPBadRequest, "agent=... is required / 请指定坐席")
    async with request.app[SERVICES].pool.acquire() as conn:
        return json_reply({"agent": agent, "scores": await repo.scores_of(conn, agent)})


async def api_alarms(request: web.Request) -> web.Response:
    """Very dissatisfied customers of the period (survey_alarm), each with the call's recording id
    so the supervisor can play it at once (and add the call to the sample)."""
    _need(request, REVIEW_ROLES)
    svc = request.app[SERVICES]
    async with svc.pool.acquire() as conn:
        qa = (await load_policy_from_db(conn)).qa
        start, since, until = repo.period_bounds(day_param(request), qa.period, svc.tz)
        rows = await conn.fetch(
            """SELECT linkedid, agent, queue, call_kind, score, recording_id, at FROM survey_results
               WHERE alarm AND at >= $1 AND at < $2 ORDER BY at DESC""",
            since, until,
        )  # fmt: skip
    return json_reply({"period_start": start, "alarms": [dict(r) for r in rows]})


async def api_draw(request: web.Request) -> web.Response:
    user = _need(request, REVIEW_ROLES)
    svc = request.app[SERVICES]
    async with svc.pool.acquire() as conn:
        qa = (await load_policy_from_db(conn)).qa
        plan, rows = await repo.draw_period(
            conn, qa, day_param(request), svc.tz, user.username, svc.clock.now()
        )
    return json_reply({"period": plan.period, "period_start": plan.period_start, "plan_digest": plan.digest(),
                  "extra_agents": sorted(plan.extra_agents), "samples": rows})  # fmt: skip


async def api_add_sample(request: web.Request) -> web.Response:
    user = _need(request, REVIEW_ROLES)
    svc = request.app[SERVICES]
    linkedid = str((await _body(request)).get("linkedid", "")).strip()
    if not linkedid:
        raise json_error(web.HTTPBadRequest, "linkedid is required / 请填写通话编号")
    try:
        async with svc.pool.acquire() as conn:
            qa = (await load_policy_from_db(conn)).qa
            row = await repo.add_by_hand(conn, qa, linkedid, svc.tz, user.username, svc.clock.now())
    except repo.QualityError as e:
        raise json_error(web.HTTPNotFound, str(e)) from None
    return json_reply(row)


async def api_score(request: web.Request) -> web.Response:
    user = _need(request, REVIEW_ROLES)
    svc = request.app[SERVICES]
    body = await _body(request)
    try:
        sample_id = int(request.match_info["id"])
    except ValueError:
        raise json_error(web.HTTPNotFound, "no such sample") from None
    try:
        async with svc.pool.acquire() as conn:
            row = await repo.score_sample(
                conn, sample_id, str(body.get("form") or repo.DEFAULT_FORM_NAME), body.get("answers"),
                str(body.get("comment") or ""), user.username, svc.clock.now(),
            )  # fmt: skip
    except FormError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    except repo.QualityError as e:
        raise json_error(web.HTTPNotFound, str(e)) from None
    return json_reply(row)


async def api_forms(request: web.Request) -> web.Response:
    _need(request, REVIEW_ROLES)
    async with request.app[SERVICES].pool.acquire() as conn:
        return json_reply({"forms": await repo.forms(conn)})


async def api_save_form(request: web.Request) -> web.Response:
    user = _need(request, FORM_ROLES)
    svc = request.app[SERVICES]
    body = await _body(request)
    name = str(body.get("name") or repo.DEFAULT_FORM_NAME)
    try:
        async with svc.pool.acquire() as conn:
            version = await repo.save_form(conn, name, body.get("definition"), user.username, svc.clock.now())
    except FormError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    except Exception as e:  # the name's CHECK: say which rule, not a 500
        if "qa_forms_name_check" in str(e):
            raise json_error(web.HTTPBadRequest, "form name: 1-64 letters, digits, . _ -") from None
        raise
    return json_reply({"name": name, "version": version})


async def audio(request: web.Request) -> web.StreamResponse:
    """A recording for the browser's player; HTTP Range (seek) is FileResponse's. Audited first."""
    user = _need(request, REVIEW_ROLES)
    svc = request.app[SERVICES]
    try:
        rec_id = int(request.match_info["id"])
    except ValueError:
        raise json_error(web.HTTPNotFound, "no such recording") from None
    async with svc.pool.acquire() as conn:
        rec = await conn.fetchrow("SELECT id, linkedid, path FROM recordings WHERE id = $1", rec_id)
        if rec is None:
            raise json_error(web.HTTPNotFound, "no such recording / 无此录音")
        file = inside(request.app[RECORDINGS_DIR], rec["path"])
        if file is None:
            raise json_error(web.HTTPNotFound, "recording file not found / 录音文件不存在")
        # before a byte leaves: a recording that reached a browser is always in the log
        await conn.execute(
            """INSERT INTO recording_playbacks (at, username, role, recording_id, linkedid, byte_range)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            svc.clock.now(), user.username, user.role, rec_id, rec["linkedid"],
            request.headers.get("Range", "")[:100],
        )  # fmt: skip
    return web.FileResponse(file, headers={"Cache-Control": "no-store"})


def _period_args(request: web.Request) -> tuple[str, str]:
    bucket = request.query.get("period", "week")
    by = request.query.get("by", "agent")
    if bucket not in ("week", "month") or by not in ("agent", "team"):
        raise json_error(web.HTTPBadRequest, "period must be week or month, by agent or team")
    return bucket, by


async def _report_rows(request: web.Request, bucket: str, by: str) -> list[dict[str, Any]]:
    svc = request.app[SERVICES]
    _, since, until = repo.period_bounds(day_param(request), bucket, svc.tz)
    async with svc.pool.acquire() as conn:
        policy = await load_policy_from_db(conn)
        return await report.quality_rows(conn, since, until, str(svc.tz), bucket, by,
                                         policy.qa.complaint_at_or_below)  # fmt: skip


async def api_report(request: web.Request) -> web.Response:
    _need(request, REVIEW_ROLES)
    bucket, by = _period_args(request)
    return json_reply({"period": bucket, "by": by, "rows": await _report_rows(request, bucket, by)})


def render_report(rows: list[dict[str, Any]], bucket: str, by: str, day: date) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in report.as_cells(r)) + "</tr>" for r in rows
    )
    head = "".join(f"<th>{escape(c)}</th>" for c in report.COLUMNS)
    q = f"period={bucket}&by={by}&day={day}"
    links = " ".join(
        f'<a href="?period={p}&by={b}&day={day}">{label}</a>'
        for p, b, label in (("week", "agent", "周/坐席"), ("week", "team", "周/组"),
                            ("month", "agent", "月/坐席"), ("month", "team", "月/组"))
    )  # fmt: skip
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>质检与满意度 Quality report</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 8px;text-align:right}}</style></head><body>
<h1>质检与满意度 Quality — {escape(str(day))}</h1>
<p>{links} · <a href="/reports/quality.csv?{q}">CSV</a> <a href="/reports/quality.xlsx?{q}">XLSX</a>
· <a href="/quality">抽查 Review</a></p>
<table><tr>{head}</tr>{cells}</table></body></html>"""


async def report_page(request: web.Request) -> web.Response:
    _need(request, REVIEW_ROLES)
    bucket, by = _period_args(request)
    rows = await _report_rows(request, bucket, by)
    return web.Response(text=render_report(rows, bucket, by, day_param(request)), content_type="text/html")


async def report_download(request: web.Request) -> web.StreamResponse:
    user = _need(request, REVIEW_ROLES)
    svc = request.app[SERVICES]
    bucket, by = _period_args(request)
    fmt = request.match_info["fmt"]
    rows = await _report_rows(request, bucket, by)
    name = f"quality-{bucket}-{by}-{day_param(request)}.{fmt}"
    async with svc.pool.acquire() as conn:
        await exports.log_download(conn, svc.clock.now(), user.username, user.role, name, False, len(rows))
    disposition = {"Content-Disposition": f"attachment; filename={name}"}
    if fmt == "csv":
        text = "".join(exports.csv_chunks(report.COLUMNS, [report.as_cells(r) for r in rows]))
        return web.Response(body=text.encode("utf-8"), headers={"Content-Type": "text/csv; charset=utf-8",
                                                                 **disposition})  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        await exports.write_xlsx_stream(path, report.COLUMNS, report.aiter_cells(rows), f"quality {bucket}")
        body = path.read_bytes()  # a report of a few hundred rows; the temp dir goes with the block
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return web.Response(body=body, headers={"Content-Type": xlsx, **disposition})


def setup(app: web.Application) -> None:
    # the process wiring (cti/app.py) sets the site's directory; this is the shipped default's
    app[RECORDINGS_DIR] = Path(fixed_dir(RecordingSettings().path_pattern))
    app.router.add_get("/quality", page)
    app.router.add_get("/api/quality/samples", api_samples)
    app.router.add_post("/api/quality/samples", api_add_sample)
    app.router.add_post("/api/quality/draw", api_draw)
    app.router.add_get("/api/quality/alarms", api_alarms)
    app.router.add_post("/api/quality/samples/{id}/score", api_score)
    app.router.add_get("/api/quality/scores", api_my_scores)
    app.router.add_get("/api/quality/forms", api_forms)
    app.router.add_post("/api/quality/forms", api_save_form)
    app.router.add_get("/recordings/{id}/audio", audio)
    app.router.add_get("/api/reports/quality", api_report)
    app.router.add_get("/reports/quality", report_page)
    app.router.add_get("/reports/quality.{fmt:csv|xlsx}", report_download)
