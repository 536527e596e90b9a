"""AGI scripts by name (`agi://host:port/<name>`), one small module each under cti/agi/handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cti.agi.context import AgiContext
    from cti.agi.session import AgiSession

Handler = Callable[["AgiSession", "AgiContext"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    name: str
    run: Handler
    timeout_s: float | None = None  # None: settings.agi.session_timeout_s; IVR scripts need longer


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(self, name: str, run: Handler, *, timeout_s: float | None = None) -> None:
        if name in self._specs:
            raise ValueError(f"AGI script {name!r} registered twice")
        self._specs[name] = HandlerSpec(name, run, timeout_s)

    def get(self, name: str) -> HandlerSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)


def default_registry() -> Registry:
    from cti.agi.handlers import agent_feature, callback_offer, night, route, survey

    reg = Registry()
    reg.register("route", route.handle)
    reg.register("night", night.handle, timeout_s=night.TIMEOUT_S)
    reg.register("callback_offer", callback_offer.handle, timeout_s=callback_offer.TIMEOUT_S)
    reg.register("agent_feature", agent_feature.handle)
    reg.register("survey", survey.handle, timeout_s=survey.TIMEOUT_S)
    return reg
