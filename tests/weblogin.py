"""Signing in to the web app from a test client, as a browser does (form post, then the redirect)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient


async def login(client: TestClient, user: str, pw: str) -> None:
    r = await client.post("/login", data={"username": user, "password": pw}, allow_redirects=False)
    assert r.status == 302
