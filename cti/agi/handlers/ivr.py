"""Pieces shared by the interactive scripts (night, callback_offer): prompts and number confirmation.

Prompt names are sound files without extension, relative to Asterisk's sounds directory; the texts
and the offline build are in cti/prompts (manifest.toml, `cti prompts build`), a site's own
recordings replace them there.

What Asterisk does that shapes this (captures 15, 16):
- a missing prompt is `200 result=-1` with the caller still connected (STREAM FILE and GET DATA):
  log it and go on; only `HANGUP`/511 (AgiHangup) ends the script;
- keys pressed while the number is read back are lost unless they are escape digits: every
  read-back passes ESCAPE and the key it returns starts the caller's answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from cti.agi.protocol import AgiCommandError
from cti.agi.session import AgiSession, Playback
from cti.routing.inbound import CallerNumber, NumberKind, classify_number


@dataclass(frozen=True)
class Caller:
    """Who is on the line, as the interactive scripts record it."""

    uniqueid: str | None
    number: CallerNumber  # CALLERID(num), classified
    did: str | None  # the number dialed (CTI_DNIS set by the dialplan, else agi_dnid)
    linkedid: str | None


async def who_calls(session: AgiSession) -> Caller:
    env = session.env
    uniqueid = env.get("agi_uniqueid")
    caller = classify_number(env.get("agi_callerid"))
    did = await session.get_variable("CTI_DNIS") or env.get("agi_dnid") or None
    linkedid = await session.get_variable("CHANNEL(linkedid)") or uniqueid
    return Caller(uniqueid, caller, did, linkedid)


@dataclass(frozen=True)
class Prompts:
    night_welcome: str = "cti/night-welcome"  # "we are closed; leave your name and number"
    day_busy: str = "cti/day-all-busy"  # by day, no agent could take the call: "leave name and number"
    say_name: str = "cti/say-your-name"  # "after the tone, say your name"
    number_is: str = "cti/your-number-is"  # followed by SAY DIGITS
    confirm_or_enter: str = "cti/press-1-or-enter-number"  # "press 1 if right, or key your number and #"
    enter_number: str = "cti/enter-number"  # "key the number to call you back on, then #"
    invalid: str = "cti/invalid-number"
    no_number: str = "cti/sorry-no-number"
    thanks: str = "cti/thanks-we-call-back"
    offer: str = "cti/offer-callback"  # "all lines busy: press 1 and we call you back, or hold"
    beep: str = "beep"  # before collecting keys when a GET DATA prompt could not be played


log = structlog.get_logger(__name__)

PROMPTS = Prompts()
CONFIRM_TIMEOUT_MS = 6000
MAX_NUMBER_DIGITS = 20
CONFIRM_ATTEMPTS = 3
ESCAPE = "0123456789*#"  # any key stops a prompt or a read-back and counts as the caller's answer


async def confirm_number(session: AgiSession, caller: CallerNumber, prompts: Prompts = PROMPTS) -> str | None:
    """Ask the caller to confirm the number we have (key 1) or key another ending with #.
    Returns the number to call back, or None after CONFIRM_ATTEMPTS failed tries."""
    for _ in range(CONFIRM_ATTEMPTS):
        if caller.kind is NumberKind.VALID and caller.number:
            early = await read_back(session, caller.number, prompts)
            keyed = await ask(session, prompts.confirm_or_enter, CONFIRM_TIMEOUT_MS, MAX_NUMBER_DIGITS, early)
            if keyed == "1":
                return caller.number
        else:
            keyed = await ask(session, prompts.enter_number, CONFIRM_TIMEOUT_MS, MAX_NUMBER_DIGITS)
        entered = classify_number(keyed.rstrip("#"))
        if entered.kind is NumberKind.VALID and entered.number and len(entered.number) >= 5:
            return entered.number
        await play(session, prompts.invalid)
    return None


async def read_back(session: AgiSession, number: str, prompts: Prompts = PROMPTS) -> str:
    """ "Your number is" + the digits; returns the key that cut it short ('' if none)."""
    early = await play(session, prompts.number_is, ESCAPE)
    if not early:
        early = await say_digits(session, number, ESCAPE)
    return early


async def ask(session: AgiSession, prompt: str, timeout_ms: int, max_digits: int, early: str = "") -> str:
    """The caller's keys, without the final `#`: GET DATA, or, when a key already came during the
    read-back (early), the rest of the keys without playing the question over the caller's typing.
    A GET DATA that could not play its prompt (-1, capture 15) beeps and collects the keys anyway."""
    if early:
        return await _collect(session, early, timeout_ms, max_digits)
    got = await session.get_data(prompt, timeout_ms, max_digits)
    if got is not None:
        return got
    log.warning("prompt not played", prompt=prompt, command="GET DATA")
    first = await play(session, PROMPTS.beep, ESCAPE)
    return await _collect(session, first, timeout_ms, max_digits)


async def _collect(session: AgiSession, keyed: str, timeout_ms: int, max_digits: int) -> str:
    """WAIT FOR DIGIT until `#`, max_digits or a pause of timeout_ms (GET DATA's own rules)."""
    while keyed != "#" and not keyed.endswith("#") and len(keyed) < max_digits:
        d = await session.wait_for_digit(timeout_ms)
        if not d:  # timeout, or -1: a caller who left shows on the next command
            break
        keyed += d
    return keyed.removesuffix("#")


async def play(session: AgiSession, prompt: str, escape_digits: str = "") -> str:
    """A prompt is help, not a requirement: a missing file (`result=-1`) or a refused command must
    not cost the caller the chance to leave a number; both are logged. Hangups still end the
    session (AgiHangup). Returns the escape digit the caller pressed ('' if none)."""
    try:
        done = await session.stream_file(prompt, escape_digits)
    except AgiCommandError as e:
        log.warning("prompt not played", prompt=prompt, code=e.code)
        return ""
    return _noted(done, "prompt not played", prompt=prompt, command="STREAM FILE")


async def say_digits(session: AgiSession, digits: str, escape_digits: str = "") -> str:
    try:
        done = await session.say_digits(digits, escape_digits)
    except AgiCommandError as e:
        log.warning("digits not said", code=e.code)
        return ""
    return _noted(done, "digits not said", command="SAY DIGITS")


def _noted(done: Playback, what: str, **fields: object) -> str:
    if not done.played:
        log.warning(what, **fields)  # prompt names and commands only: never the digits said
    return done.digit
