"""Pieces shared by the interactive scripts (night, callback_offer): prompts and number confirmation.

Prompt names are sound files without extension, relative to Asterisk's sounds directory; a site
records its own Chinese prompts under sounds/<lang>/cti/ with these names.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from cti.agi.protocol import AgiCommandError
from cti.agi.session import AgiSession
from cti.routing.inbound import CallerNumber, NumberKind, classify_number


@dataclass(frozen=True)
class Prompts:
    night_welcome: str = "cti/night-welcome"  # "we are closed; leave your name and number"
    say_name: str = "cti/say-your-name"  # "after the tone, say your name"
    number_is: str = "cti/your-number-is"  # followed by SAY DIGITS
    confirm_or_enter: str = "cti/press-1-or-enter-number"  # "press 1 if right, or key your number and #"
    enter_number: str = "cti/enter-number"  # "key the number to call you back on, then #"
    invalid: str = "cti/invalid-number"
    no_number: str = "cti/sorry-no-number"
    thanks: str = "cti/thanks-we-call-back"
    offer: str = "cti/offer-callback"  # "all lines busy: press 1 and we call you back, or hold"


log = structlog.get_logger(__name__)

PROMPTS = Prompts()
CONFIRM_TIMEOUT_MS = 6000
MAX_NUMBER_DIGITS = 20
CONFIRM_ATTEMPTS = 3


async def confirm_number(session: AgiSession, caller: CallerNumber, prompts: Prompts = PROMPTS) -> str | None:
    """Ask the caller to confirm the number we have (key 1) or key another ending with #.
    Returns the number to call back, or None after CONFIRM_ATTEMPTS failed tries."""
    for _ in range(CONFIRM_ATTEMPTS):
        if caller.kind is NumberKind.VALID and caller.number:
            await play(session, prompts.number_is)
            await say_digits(session, caller.number)
            keyed = await session.get_data(prompts.confirm_or_enter, CONFIRM_TIMEOUT_MS, MAX_NUMBER_DIGITS)
            if keyed == "1":
                return caller.number
        else:
            keyed = await session.get_data(prompts.enter_number, CONFIRM_TIMEOUT_MS, MAX_NUMBER_DIGITS)
        entered = classify_number(keyed.rstrip("#"))
        if entered.kind is NumberKind.VALID and entered.number and len(entered.number) >= 5:
            return entered.number
        await play(session, prompts.invalid)
    return None


async def play(session: AgiSession, prompt: str) -> None:
    """A prompt is help, not a requirement: a missing file (`result=-1`) or a refused command must
    not cost the caller the chance to leave a number. Hangups still end the session."""
    try:
        await session.stream_file(prompt)
    except AgiCommandError as e:
        log.warning("prompt not played", prompt=prompt, code=e.code)


async def say_digits(session: AgiSession, digits: str) -> None:
    try:
        await session.say_digits(digits)
    except AgiCommandError as e:
        log.warning("digits not said", code=e.code)
