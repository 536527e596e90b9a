"""The desk and the wallboard in a real browser (Debian's chromium through Playwright, nothing
downloaded): an agent and a supervisor log in, the agent is refused a 3rd break and a pause in peak,
a simulated call pops the screen with the masked number, the agent files a disposition, the
wallboard shows the alarm — and nothing the agent's browser received carries the full number."""

from __future__ import annotations

import shutil

import pytest

from tests.desk.rig import CUSTOMER, PASSWORDS, floor
from tests.polling import until

pw = pytest.importorskip("playwright.async_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


async def test_agent_and_supervisor_in_a_browser(db_url: str) -> None:
    async with floor(db_url) as fl, pw.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        seen: list[str] = []  # everything the agent's browser received
        try:
            agent = await browser.new_page()

            async def keep(resp) -> None:  # type: ignore[no-untyped-def]
                seen.append(resp.url)
                try:
                    seen.append(await resp.text())
                except Exception:  # redirects have no body
                    pass

            agent.on("response", keep)
            agent.on("websocket", lambda ws: ws.on("framereceived", lambda f: seen.append(str(f))))
            await agent.goto(fl.url + "/login")
            await agent.fill("input[name=username]", "agent1")
            await agent.fill("input[name=password]", PASSWORDS["agent1"])
            await agent.click("button[type=submit]")
            await agent.wait_for_url("**/desk")
            await agent.click("#b-login")
            await agent.wait_for_selector("#state.ready")

            # two of the group already out: the 3rd break is refused, naming them and until when
            for other in ("agent2", "agent3"):
                await fl.desk.request(other, "login")
                await fl.desk.request(other, "pause", "break")
            await agent.click("#b-pause")
            msg = agent.locator("#msg.refused")
            await msg.wait_for()
            assert "agent2 (break, 至 until 10:40)" in await msg.text_content()
            await fl.desk.request("agent2", "unpause")
            fl.peak[0] = True
            await agent.click("#b-pause")
            # a locator, not wait_for_function: the page CSP forbids eval
            await agent.locator("#msg", has_text="peak").wait_for(state="attached")
            fl.peak[0] = False

            # the supervisor's wallboard shows the refusal as an alarm, agents in natural order
            sup = await browser.new_page()
            await sup.goto(fl.url + "/login")
            await sup.fill("input[name=username]", "wang")
            await sup.fill("input[name=password]", PASSWORDS["wang"])
            await sup.click("button[type=submit]")
            await sup.goto(fl.url + "/wallboard")
            await sup.wait_for_selector("#alarms li[data-kind=break_refused]")
            order = await sup.locator("#agents tr").evaluate_all("rs => rs.map(r => r.dataset.agent)")
            assert order == ["agent1", "agent2", "agent3", "agent10", "sup1"]

            # a call pops the agent's screen with the masked number
            fl.sim.set_answer("agent1", "manual")
            fl.sim.place_call(caller=CUSTOMER, did="4008001234", name="赵女士", behaviour={"talk_time": 30})
            await fl.sim.advance(1)
            await agent.wait_for_selector("#state.ringing")
            assert await agent.text_content("#pop-number") == "138****5678"
            assert "CCTV-1" in await agent.text_content("#pop-label")
            fl.sim.answer("agent1")
            await fl.sim.advance(31)
            await agent.wait_for_selector("#state.wrapup")
            await agent.select_option("select[name=outcome]", "inquiry")
            await agent.click("#disp button[type=submit]")
            await agent.locator("#dispmsg", has_text="Saved").wait_for(state="attached")
            await agent.wait_for_selector("#state.ready")
            assert (
                await fl.pool.fetchval("SELECT outcome FROM dispositions WHERE agent = 'agent1'") == "inquiry"
            )
            seen.append(await agent.content())
        finally:
            await browser.close()
        assert await until(lambda: len(seen) > 10)
        assert not [s for s in seen if CUSTOMER in s], "a full number reached the agent's browser"
