"""The satisfaction survey (issue 17) as a customer meets it, against the fake Asterisk (captures
04/15/16 reply forms) and a real PostgreSQL: keys, no key, an invalid key, a hang-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from cti.agi.context import AgiContext
from cti.clock import ManualClock
from cti.policy import load_policy
from tests.agi.conftest import DAY, make_ctx
from tests.agi.fake_asterisk import FakeChannel, env_lines, run_call

LINKEDID = "1795430750.0"


def _ctx(pool: asyncpg.Pool, **overrides: object) -> AgiContext:
    return make_ctx(pool=pool, clock=ManualClock(DAY), policy=load_policy(overrides=overrides or None))


async def _survey(start_server, ctx: AgiContext, ch: FakeChannel, *, hangup_after: int | None = None,  # type: ignore[no-untyped-def]
                  agent: str = "agent2", kind: str = "inbound") -> FakeChannel:  # fmt: skip
    ch.vars.setdefault("CHANNEL(linkedid)", LINKEDID)
    ch.vars.setdefault("CTI_QUEUE", "sales")
    server = await start_server(ctx)
    env = env_lines(agi_network_script="survey", agi_arg_1=agent, agi_arg_2=kind)
    return await run_call(server.port, ch, env, hangup_after=hangup_after)


async def _row(pool: asyncpg.Pool, wait_s: float = 0.0) -> asyncpg.Record:
    """The call's row; after a hang-up the script writes it once Asterisk has gone: wait for it."""
    for _ in range(int(wait_s / 0.02) + 1):
        row = await pool.fetchrow("SELECT * FROM survey_results WHERE linkedid = $1", LINKEDID)
        if row is not None:
            return row
        await asyncio.sleep(0.02)
    return row


def _played(ch: FakeChannel) -> list[str]:
    return [a[2] for a in ch.argv if a[:2] in (["STREAM", "FILE"], ["GET", "DATA"])]


async def test_customer_rates_the_call_and_is_thanked(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)
    ch = await _survey(start_server, ctx, FakeChannel(dtmf=["4"]))
    row = await _row(pool)
    assert (row["agent"], row["queue"], row["score"], row["outcome"], row["alarm"]) == (
        "agent2", "sales", 4, "rated", False,
    )  # fmt: skip
    assert _played(ch) == ["cti/survey-five", "cti/survey-thanks"]
    assert ch.hung_up_by_script
    (ev,) = ctx.events.of_type("survey_result")  # type: ignore[attr-defined]
    assert (ev.agent, ev.linkedid, ev.payload["score"]) == ("agent2", LINKEDID, 4)
    assert ev.payload["label"] == "满意"
    assert ctx.events.of_type("survey_alarm") == []  # type: ignore[attr-defined]


async def test_no_key_is_asked_again_then_recorded_without_a_score(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)
    ch = await _survey(start_server, ctx, FakeChannel(dtmf=[]))
    row = await _row(pool)
    assert (row["score"], row["outcome"], row["keyed"]) == (None, "no_key", "")
    assert _played(ch) == ["cti/survey-five", "cti/survey-five"]  # policy attempts = 2, no thanks
    assert ch.hung_up_by_script


async def test_invalid_key_is_refused_then_a_valid_one_counts(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)
    ch = await _survey(start_server, ctx, FakeChannel(dtmf=["9", "5"]))
    assert _played(ch) == ["cti/survey-five", "cti/survey-invalid", "cti/survey-five", "cti/survey-thanks"]
    row = await _row(pool)
    assert (row["score"], row["outcome"]) == (5, "rated")


async def test_only_invalid_keys_are_stored_as_invalid(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)
    await _survey(start_server, ctx, FakeChannel(dtmf=["9", "#"]))
    row = await _row(pool)
    assert (row["score"], row["outcome"]) == (None, "no_key")  # a lone # is no key (capture 16 form)
    await pool.execute("DELETE FROM survey_results")
    await _survey(start_server, _ctx(pool), FakeChannel(dtmf=["0", "7"]))
    row = await _row(pool)
    assert (row["score"], row["outcome"], row["keyed"]) == (None, "invalid", "7")


async def test_customer_who_hangs_up_during_the_question(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)
    # commands: GET VARIABLE CTI_QUEUE, CHANNEL(linkedid), then the question: the caller leaves on it
    ch = await _survey(start_server, ctx, FakeChannel(dtmf=["5"]), hangup_after=2)
    row = await _row(pool, wait_s=2.0)
    assert (row["score"], row["outcome"]) == (None, "hung_up")
    assert not ch.hung_up_by_script
    (ev,) = ctx.events.of_type("survey_result")  # type: ignore[attr-defined]
    assert ev.payload["outcome"] == "hung_up"


async def test_very_dissatisfied_alerts_the_supervisor_with_the_recording(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    rec_id = await pool.fetchval(
        "INSERT INTO recordings (linkedid, path, created_at) VALUES ($1, '/rec/x.wav', $2) RETURNING id",
        LINKEDID, datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
    )  # fmt: skip
    ctx = _ctx(pool)
    await _survey(start_server, ctx, FakeChannel(dtmf=["1"]))
    (alarm,) = ctx.events.of_type("survey_alarm")  # type: ignore[attr-defined]
    assert (alarm.agent, alarm.linkedid, alarm.payload["recording_id"]) == ("agent2", LINKEDID, rec_id)
    row = await _row(pool)
    assert (row["score"], row["alarm"], row["recording_id"]) == (1, True, rec_id)


async def test_three_point_scale_maps_to_5_3_1(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool, **{"survey.scale": "three"})
    ch = await _survey(start_server, ctx, FakeChannel(dtmf=["3"]), kind="callback")
    assert _played(ch)[0] == "cti/survey-three"
    row = await _row(pool)
    assert (row["score"], row["call_kind"], row["alarm"]) == (1, "callback", True)  # 不满意


async def test_queue_the_policy_does_not_survey_is_hung_up_without_a_question(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool, **{"survey.queues": ["vip"]})
    ch = await _survey(start_server, ctx, FakeChannel(dtmf=["5"]))
    assert _played(ch) == [] and ch.hung_up_by_script
    assert await _row(pool) is None
