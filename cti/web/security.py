"""Web security as one middleware, so routes added later by any module are covered without a change:

- CSRF: a state-changing request (POST/PUT/PATCH/DELETE) and a websocket handshake must come from our
  own origin, judged by `Sec-Fetch-Site`, else `Origin`, else `Referer` (OWASP: verify origin with
  standard headers). A form post with a session also carries a per-session token, put into every
  `<form method="post">` of the pages we serve.
- cookies: HttpOnly, SameSite, Secure when the request came over TLS (or per settings);
- headers: a Content-Security-Policy with a per-response nonce on our inline <script>/<style> (no
  other inline script runs), nosniff, no framing, same-origin referrers;
- login throttling: failures per user name and per address, counted in PostgreSQL so every process
  shares them. Decision 1600.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from cti.config import WebSettings

log = structlog.get_logger(__name__)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_TAG = re.compile(r"<(script|style)(?=[\s>])", re.IGNORECASE)
_POST_FORM = re.compile(r"(<form\b[^>]*\bmethod=[\"']?post[\"']?[^>]*>)", re.IGNORECASE)


@dataclass(frozen=True)
class WebSecurity:
    """What the middleware and the login enforce; from `[web]` settings (cti/config.py)."""

    secure_cookies: str = "auto"  # auto | always | never
    trusted_proxies: frozenset[str] = frozenset()
    session_idle: timedelta = timedelta(minutes=30)
    session_max: timedelta = timedelta(hours=12)
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    login_window: timedelta = timedelta(minutes=15)
    session_cookie: str = field(default="cti_session")

    @classmethod
    def from_settings(cls, web_settings: WebSettings) -> WebSecurity:
        w = web_settings
        return cls(
            secure_cookies=w.secure_cookies,
            trusted_proxies=frozenset(w.trusted_proxies),
            session_idle=timedelta(minutes=w.session_idle_minutes),
            session_max=timedelta(hours=w.session_max_hours),
            login_max_failures=w.login_max_failures,
            login_max_failures_per_address=w.login_max_failures_per_address,
            login_window=timedelta(minutes=w.login_window_minutes),
        )


def _policy(request: web.Request) -> WebSecurity:
    from cti.web.app import SERVICES

    return request.app[SERVICES].security


def _from_proxy(request: web.Request, sec: WebSecurity) -> bool:
    return request.remote is not None and request.remote in sec.trusted_proxies


def is_tls(request: web.Request, sec: WebSecurity) -> bool:
    if request.secure and request.scheme == "https" and request.transport is not None:
        if request.transport.get_extra_info("sslcontext") is not None:
            return True
    return _from_proxy(request, sec) and request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def client_address(request: web.Request, sec: WebSecurity) -> str:
    """The caller's address: the peer, or behind a trusted proxy the address that proxy saw (the
    last X-Forwarded-For entry; earlier ones are whatever the client chose to send)."""
    if _from_proxy(request, sec):
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return (request.remote or "unknown")[:64]


def _netloc(host: str, scheme: str) -> str:
    host = host.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return host[: -len(default)] if default and host.endswith(default) else host


def cross_site(method: str, headers: Any, host: str) -> str | None:
    """Why a request does not come from our own pages, or None. Pure: headers and the Host we serve.
    Hosts are compared without the scheme, so a TLS proxy in front (https outside, http here) does
    not turn every request cross-site; a request with none of the headers is not from a browser
    page (browsers send Origin on every cross-origin POST) and passes."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site[:40]}"
    for name in ("Origin", "Referer"):
        value = headers.get(name)
        if value is None:
            continue
        if value == "null":
            return f"{name}: null"
        parts = urlsplit(value)
        if not parts.netloc:
            return f"{name} without a host"
        theirs = _netloc(parts.netloc, parts.scheme)
        if theirs != _netloc(host, "http") and theirs != _netloc(host, "https"):
            return f"{name} {theirs[:80]} is not {host[:80]}"
        return None
    return None


def form_token(session_token: str) -> str:
    """The per-session token for form posts: unguessable without the HttpOnly session cookie, and
    nothing to store (it is derived from the session)."""
    return hmac.new(session_token.encode(), b"cti-csrf", hashlib.sha256).hexdigest()[:32]


def _refuse(reason: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(
        text='{"error": "跨站请求被拒绝 cross-site request refused"}', content_type="application/json",
        headers={"X-Refused": reason[:100].encode("ascii", "replace").decode()},
    )  # fmt: skip


def csp(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; media-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _harden(request: web.Request, resp: web.StreamResponse, sec: WebSecurity, nonce: str) -> None:
    h = resp.headers
    h.setdefault("Content-Security-Policy", csp(nonce))
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    tls = is_tls(request, sec)
    if tls:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    secure = sec.secure_cookies == "always" or (sec.secure_cookies == "auto" and tls)
    for morsel in resp.cookies.values():
        morsel["httponly"] = True
        if not morsel["samesite"]:
            morsel["samesite"] = "Lax"
        if secure:
            morsel["secure"] = True


def _rewrite_html(resp: web.StreamResponse, nonce: str, token: str | None) -> None:
    """Our inline <script>/<style> get the response's nonce; post forms get the session's token."""
    if not isinstance(resp, web.Response) or resp.content_type != "text/html" or resp.body is None:
        return
    if resp.prepared or not isinstance(resp.body, bytes):
        return
    text = resp.text or ""
    text = _TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', text)
    if token:
        hidden = f'<input type="hidden" name="{CSRF_FIELD}" value="{token}">'
        text = _POST_FORM.sub(lambda m: m.group(1) + hidden, text)
    resp.text = text


@web.middleware
async def security_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    sec = _policy(request)
    nonce = secrets.token_urlsafe(16)
    session = request.cookies.get(sec.session_cookie)
    try:
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if request.method in UNSAFE or upgrade:
            why = cross_site(request.method, request.headers, request.host)
            if why is not None:
                log.warning("web_cross_site_refused", method=request.method, path=request.path[:100],
                            reason=why)  # fmt: skip
                raise _refuse(why)
            # (not /login: it starts a session rather than acting in one; the origin check covers it)
            if (
                request.method in UNSAFE
                and session
                and request.content_type in _FORMS
                and request.path != "/login"
            ):
                form = await request.post()  # cached: the handler reads it again for free
                if not hmac.compare_digest(str(form.get(CSRF_FIELD, "")), form_token(session)):
                    log.warning("web_csrf_token_refused", path=request.path[:100])
                    raise _refuse("form token missing or wrong")
        if await _has_nul(request):
            raise web.HTTPBadRequest(
                text='{"error": "请求含空字符 NUL characters are not accepted"}',
                content_type="application/json",
            )
        try:
            resp = await handler(request)
        except (ValueError, UnicodeDecodeError) as exc:
            if not _from_body_parsing(exc):
                raise  # a real bug stays a 500 with its traceback
            raise web.HTTPBadRequest(
                text='{"error": "请求体格式错误 the body is not valid JSON / form data"}',
                content_type="application/json",
            ) from None
    except web.HTTPException as exc:
        _harden(request, exc, sec, nonce)
        raise
    _harden(request, resp, sec, nonce)
    _rewrite_html(resp, nonce, form_token(session) if session else None)
    return resp


async def _has_nul(request: web.Request) -> bool:
    """NUL in the path, the query or a JSON/form body: no input of ours has one, and PostgreSQL
    refuses it in text (a 500 deep in whichever handler stored it), so it is refused here, once."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.query.items()):
        return True
    # (not multipart: aiohttp streams it to the handler, and a read here would consume the stream)
    if (
        request.method in UNSAFE
        and request.can_read_body
        and request.content_type in ("application/json", "application/x-www-form-urlencoded")
    ):
        raw = await request.read()  # cached: the handler's json()/post() reads the same bytes
        return b"\x00" in raw or b"\\u0000" in raw or b"%00" in raw
    return False


def _from_body_parsing(exc: BaseException) -> bool:
    """Raised while aiohttp read the request body as JSON / text / form (`await request.json()` on a
    body that is not JSON): the client's fault, a 400, for every handler present and future."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name in ("json", "text", "post") and code.co_filename.endswith("web_request.py"):
            return True
        tb = tb.tb_next
    return False


# ---- login throttling -------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    locked: bool
    retry_after_s: int = 0


async def login_throttle(conn: Any, sec: WebSecurity, username: str, address: str, now: datetime) -> Throttle:
    """Locked when the user name, or the address, failed too often within the window; unlocks when
    the oldest counted failure leaves the window (so the lockout lasts at most login_window)."""
    since = now - sec.login_window
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM web_login_failures WHERE username = $1 AND at > $3) AS by_user,
                  (SELECT min(at) FROM (SELECT at FROM web_login_failures WHERE username = $1 AND at > $3
                                        ORDER BY at DESC LIMIT $4) x) AS user_oldest,
                  (SELECT count(*) FROM web_login_failures WHERE address = $2 AND at > $3) AS by_addr,
                  (SELECT min(at) FROM (SELECT at FROM web_login_failures WHERE address = $2 AND at > $3
                                        ORDER BY at DESC LIMIT $5) y) AS addr_oldest""",
        username, address, since, sec.login_max_failures, sec.login_max_failures_per_address,
    )  # fmt: skip
    until: list[datetime] = []
    if row["by_user"] >= sec.login_max_failures:
        until.append(row["user_oldest"] + sec.login_window)
    if row["by_addr"] >= sec.login_max_failures_per_address:
        until.append(row["addr_oldest"] + sec.login_window)
    if not until:
        return Throttle(False)
    return Throttle(True, max(1, int((max(until) - now).total_seconds()) + 1))


async def login_failed(conn: Any, username: str, address: str, now: datetime, window: timedelta) -> None:
    await conn.execute(
        "INSERT INTO web_login_failures (at, username, address) VALUES ($1, $2, $3)",
        now, username[:64], address,
    )  # fmt: skip
    # old rows are no use to anyone: keep the table small without a separate job
    await conn.execute("DELETE FROM web_login_failures WHERE at < $1", now - 4 * window)


async def login_succeeded(conn: Any, username: str) -> None:
    await conn.execute("DELETE FROM web_login_failures WHERE username = $1", username)
