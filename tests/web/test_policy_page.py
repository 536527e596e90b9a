"""The managers' page for the house figures: a manager changes a fine and the follow-up quota under
their own name, a bad figure is refused naming the key (nothing stored), a supervisor or an agent
cannot change anything, and the page is Chinese first."""

from __future__ import annotations

from cti.policy import load_policy_from_db
from cti.web.auth import add_user
from tests.web.test_admin import web  # noqa: F401  (the fixture: app, pool, an admin and a supervisor)
from tests.weblogin import login


async def test_a_manager_changes_figures_under_their_name(web) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, pool = web  # the admin page's floor (root, wang) and a manager
    async with pool.acquire() as conn:
        await add_user(conn, "zhao", "manager-pw-1", "manager")
    await login(client, "wang", "supervisor-pw")
    assert (await client.get("/admin/policy")).status == 403
    r = await client.post("/api/admin/policy", json={"key": "followup.weekly_quota", "value": "1"})
    assert r.status == 403
    await login(client, "zhao", "manager-pw-1")
    assert "制度参数" in await (await client.get("/admin/policy")).text()

    r = await client.post("/api/admin/policy", json={"key": "followup.weekly_quota", "value": "15"})
    assert r.status == 200 and (await r.json())["value"] == 15
    r = await client.post("/api/admin/policy", json={"key": "fines.late.agent", "value": "12.50"})
    assert r.status == 200 and (await r.json())["value"] == "12.50"  # money as the exact string
    async with pool.acquire() as conn:
        pol = await load_policy_from_db(conn)
    assert pol.followup.weekly_quota == 15 and str(pol.fines["late"].agent) == "12.50"

    bad = await client.post("/api/admin/policy", json={"key": "fines.late.agent", "value": "12.505"})
    assert bad.status == 400 and "fines.late.agent" in (await bad.json())["error"]
    bad = await client.post("/api/admin/policy", json={"key": "ring.bogus", "value": "1"})
    assert bad.status == 400 and "ring.bogus" in (await bad.json())["error"]
    assert (await client.post("/api/admin/policy", data=b"not json")).status == 400

    data = await (await client.get("/api/admin/policy?prefix=followup")).json()
    assert {f["key"]: (f["value"], f["by"]) for f in data["figures"]} == {
        "followup.weekly_quota": (15, "zhao"),
        "followup.fine_per_missing_call": ("0.20", None),
    }
    r = await client.post("/api/admin/policy/unset", json={"key": "followup.weekly_quota"})
    assert r.status == 200
    r = await client.post("/api/admin/policy/unset", json={"key": "followup.weekly_quota"})
    assert r.status == 404
    hist = (await (await client.get("/api/admin/policy?key=followup.weekly_quota")).json())["history"]
    assert [(h["value"], h["changed_by"]) for h in hist] == [(15, "zhao"), (None, "zhao")]
