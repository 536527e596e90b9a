"""Scenario files (TOML): agents, shifts, queues, arrival curves, ad spikes, behaviour profiles."""

from __future__ import annotations

import math
import random
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cti.prompts import names as prompt_names
from cti.prompts import present


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Dist:
    """A duration distribution in seconds: fixed, uniform, exp, lognormal (median + sigma)."""

    kind: str = "fixed"
    a: float = 0.0
    b: float = 0.0
    lo: float = 0.0
    hi: float = math.inf

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            v = self.a
        elif self.kind == "uniform":
            v = rng.uniform(self.a, self.b)
        elif self.kind == "exp":
            v = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        else:  # lognormal: a = median, b = sigma
            v = rng.lognormvariate(math.log(self.a), self.b)
        return min(max(v, self.lo), self.hi)

    @property
    def mean(self) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "exp":
            return self.a
        return self.a * math.exp(self.b**2 / 2)

    @classmethod
    def parse(cls, value: Any, where: str) -> Dist:
        if isinstance(value, int | float):
            return cls("fixed", float(value))
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected a number or a table like {{dist = 'lognormal', ...}}")
        kind = value.get("dist", "fixed")
        lo, hi = float(value.get("min_clip", 0.0)), float(value.get("max_clip", math.inf))
        try:
            if kind == "fixed":
                return cls("fixed", float(value["value"]), lo=lo, hi=hi)
            if kind == "uniform":
                return cls("uniform", float(value["min"]), float(value["max"]), lo, hi)
            if kind == "exp":
                return cls("exp", float(value["mean"]), lo=lo, hi=hi)
            if kind == "lognormal":
                return cls("lognormal", float(value["median"]), float(value.get("sigma", 0.5)), lo, hi)
        except KeyError as e:
            raise ScenarioError(f"{where}: dist {kind!r} needs {e.args[0]!r}") from None
        raise ScenarioError(f"{where}: unknown dist {kind!r} (fixed, uniform, exp, lognormal)")


@dataclass(frozen=True)
class AgentProfile:
    answer_delay: Dist = Dist("fixed", 3.0)
    no_answer_chance: float = 0.0
    talk_time: Dist = Dist("fixed", 60.0)
    hangup_first_chance: float = 0.0
    break_chance: float = 0.0
    break_duration: Dist = Dist("fixed", 300.0)
    break_reason: str = "break"
    unpause_after_autopause: float = 20.0  # the agent notices and unpauses at the phone


@dataclass(frozen=True)
class CallerProfile:
    patience: Dist = Dist("fixed", 120.0)
    dtmf: tuple[str, ...] = ()  # answers to GET DATA / WAIT FOR DIGIT, in order ('' = silence)
    message_s: float = 5.0  # length of a RECORD FILE message
    name_chance: float = 0.3
    hostile_name_chance: float = 0.0
    landline_chance: float = 0.2
    ivr_hangup_chance: float = 0.0  # hangs up during the FastAGI script (after 1-3 commands)


@dataclass(frozen=True)
class QueueConfig:
    name: str = "sales"
    strategy: str = "rrmemory"
    timeout: float = 10.0
    retry: float = 2.0
    autopause: bool = True
    wrapuptime: float = 0.0
    servicelevel: int = 60
    joinempty: bool = False
    leavewhenempty: bool = False
    max_wait: float = 60.0  # Queue(sales,,,,60)
    maxlen: int = 0


@dataclass(frozen=True)
class AgentConfig:
    id: str
    name: str
    interface: str
    did: str = ""
    group: str = ""
    profile: str = "default"
    penalty: int = 0
    queues: tuple[str, ...] = ("sales",)
    shift: str = ""


@dataclass(frozen=True)
class Shift:
    start: time
    end: time

    def active(self, local: datetime) -> bool:
        t = local.time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True)
class AdSpike:
    at_s: float  # seconds after the scenario start
    peak_per_min: float
    decay_min: float  # exponential decay time constant
    rise_s: float = 60.0

    def rate(self, t_s: float) -> float:
        """Arrivals per second added at scenario second t_s."""
        dt = t_s - self.at_s
        if dt < 0:
            return 0.0
        peak = self.peak_per_min / 60.0
        if dt < self.rise_s:
            return peak * dt / self.rise_s
        return peak * math.exp(-(dt - self.rise_s) / (self.decay_min * 60.0))


@dataclass(frozen=True)
class OutboundConfig:
    """`[outbound]`: one campaign the rehearsal creates in the CTI, its contact list (generated from
    `contact_seed`, never a file in git) and how the dialled customers behave
    (cti.sim.outbound_customers). Rates are per dial; `answer_by_hour` is the chance, by local hour,
    that a customer who is neither busy nor unreachable answers before the ring time runs out."""

    campaign: str = "outbound"
    product: str = "broadband"
    mode: str = "predictive"
    queue: str = "sales"
    did: str = "4008001234"
    max_attempts: int = 3
    retry_backoff_s: int = 3600
    contacts: int = 0
    contact_seed: int = 1
    boss_share: float = 0.05  # segment `boss`: called only 10:00-11:30 (the campaign's window)
    answer_by_hour: tuple[float, ...] = (0.35,) * 24
    busy_rate: float = 0.08
    congestion_rate: float = 0.02
    answer_delay: Dist = Dist("lognormal", 8.0, 0.5, 1.0, 60.0)
    purchase_rate: float = 0.08
    refusal_rate: float = 0.6
    never_call_rate: float = 0.01  # the rest: no decision
    talk_purchase: Dist = Dist("lognormal", 240.0, 0.4)
    talk_refusal: Dist = Dist("lognormal", 40.0, 0.5)
    talk_other: Dist = Dist("lognormal", 90.0, 0.5)
    company_message_s: float = 4.0  # the abandoned customer hears it, then the call ends

    def answer_chance(self, hour: int) -> float:
        return self.answer_by_hour[hour % 24]


def parse_outbound(o: dict[str, Any]) -> OutboundConfig:
    d = OutboundConfig()
    w = "outbound"
    hours = o.get("answer_by_hour", list(d.answer_by_hour))
    if len(hours) != 24 or not all(isinstance(x, int | float) and 0 <= x <= 1 for x in hours):
        raise ScenarioError(f"{w}.answer_by_hour: needs 24 probabilities between 0 and 1")
    rates = {k: float(o.get(k, getattr(d, k))) for k in ("busy_rate", "congestion_rate")}
    verdict_keys = ("purchase_rate", "refusal_rate", "never_call_rate")
    verdicts = {k: float(o.get(k, getattr(d, k))) for k in verdict_keys}
    for group in (rates, verdicts):
        if any(v < 0 for v in group.values()) or sum(group.values()) > 1:
            raise ScenarioError(f"{w}: {', '.join(group)} must be >= 0 and add up to at most 1")
    mode = str(o.get("mode", d.mode))
    if mode not in ("predictive", "progressive", "preview"):
        raise ScenarioError(f"{w}.mode: unknown {mode!r} (predictive, progressive, preview)")

    def dist(k: str) -> Dist:
        return Dist.parse(o[k], f"{w}.{k}") if k in o else getattr(d, k)

    return OutboundConfig(
        campaign=str(o.get("campaign", d.campaign)),
        product=str(o.get("product", d.product)),
        mode=mode,
        queue=str(o.get("queue", d.queue)),
        did=str(o.get("did", d.did)),
        max_attempts=int(o.get("max_attempts", d.max_attempts)),
        retry_backoff_s=int(o.get("retry_backoff_s", d.retry_backoff_s)),
        contacts=int(o.get("contacts", d.contacts)),
        contact_seed=int(o.get("contact_seed", d.contact_seed)),
        boss_share=float(o.get("boss_share", d.boss_share)),
        answer_by_hour=tuple(float(x) for x in hours),
        answer_delay=dist("answer_delay"),
        talk_purchase=dist("talk_purchase"),
        talk_refusal=dist("talk_refusal"),
        talk_other=dist("talk_other"),
        company_message_s=float(o.get("company_message_s", d.company_message_s)),
        **rates,
        **verdicts,
    )


@dataclass
class Scenario:
    name: str = "inline"
    start: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    timezone: str = "Asia/Shanghai"
    duration_s: float = 3600.0
    seed: int = 1
    dids: tuple[str, ...] = ("4008001234",)
    hourly: tuple[float, ...] = (0.0,) * 24  # calls per hour, local time
    ads: tuple[AdSpike, ...] = ()
    queues: tuple[QueueConfig, ...] = (QueueConfig(),)
    agents: tuple[AgentConfig, ...] = ()
    shifts: dict[str, Shift] = field(default_factory=dict)
    agent_profiles: dict[str, AgentProfile] = field(default_factory=lambda: {"default": AgentProfile()})
    caller: CallerProfile = CallerProfile()
    # pjsip.conf aor qualify_frequency: a phone that registers is UNAVAILABLE until its first OPTIONS
    # round trip, up to this long (capture 19); 0 = no qualify, reachable on REGISTER (capture 10)
    qualify_frequency_s: float = 30.0
    ami_users: dict[str, tuple[str, str]] = field(default_factory=lambda: {"cti": ("cti", "all")})
    # manager.conf eventfilter equivalents per user: events to drop, Channel prefixes to drop
    ami_excludes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    # the sound files the simulated Asterisk has: every prompt of cti/prompts/manifest.toml (what a
    # deployment ships), or what a real sounds directory holds (sounds_dir); minus missing_sounds
    missing_sounds: tuple[str, ...] = ("no-such-prompt",)
    sounds_dir: str | None = None
    outbound: OutboundConfig | None = None  # an outbound campaign day (scenarios/outbound_day.toml)

    def has_sound(self, name: str) -> bool:
        if name in self.missing_sounds:
            return False
        if self.sounds_dir is not None:
            return present(Path(self.sounds_dir), name)
        return name in prompt_names()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def arrival_rate(self, t_s: float) -> float:
        """Calls per second at scenario second t_s (hourly base + ad spikes)."""
        local = (self.start + timedelta(seconds=t_s)).astimezone(self.tz)
        base = self.hourly[local.hour] / 3600.0
        return base + sum(ad.rate(t_s) for ad in self.ads)

    def agents_table(self) -> list[dict[str, Any]]:
        """Rows for the CTI `agents` table (db/002): id, name, interface, did, group_name."""
        return [
            {
                "id": a.id,
                "name": a.name,
                "interface": a.interface,
                "did": a.did or None,
                "group_name": a.group or "default",
            }
            for a in self.agents
        ]


async def seed_agents(conn: Any, scenario: Scenario) -> int:
    """Provision the scenario's agents as a real center does (`cti agents add`: the `agents` row and
    the PJSIP realtime rows Asterisk reads, cti/agents/provision.py); existing ids are left alone.
    The SIP passwords are not kept: simulated phones do not authenticate."""
    from cti.agents.provision import add_agent, validate

    rows = scenario.agents_table()
    have = {r["id"] for r in await conn.fetch("SELECT id FROM agents WHERE id = ANY($1::text[])",
                                              [r["id"] for r in rows])}  # fmt: skip
    for r in rows:
        if r["id"] not in have:
            rec = validate({"id": r["id"], "name": r["name"], "group": r["group_name"], "did": r["did"]})
            await add_agent(conn, rec, scenario.start)
    return len(rows)


def _hhmm(v: str, where: str) -> time:
    try:
        h, m = v.split(":")
        return time(int(h) % 24, int(m))
    except ValueError:
        raise ScenarioError(f"{where}: expected HH:MM, got {v!r}") from None


def parse_scenario(data: dict[str, Any], name: str = "inline") -> Scenario:
    sim = data.get("sim", {})
    sc = Scenario(name=sim.get("name", name))
    if "start" in sim:
        start = sim["start"]
        if isinstance(start, str):
            start = datetime.fromisoformat(start)
        if not isinstance(start, datetime) or start.tzinfo is None:
            raise ScenarioError("sim.start: needs an offset, e.g. 2026-11-23T19:00:00+08:00")
        sc.start = start.astimezone(UTC)
    sc.timezone = sim.get("timezone", sc.timezone)
    sc.duration_s = float(sim.get("duration_s", sc.duration_s))
    sc.seed = int(sim.get("seed", sc.seed))
    sc.dids = tuple(str(d) for d in sim.get("dids", sc.dids))
    if "auto_login" in sim:
        raise ScenarioError(
            "sim.auto_login: removed; like Asterisk the simulator starts with an empty queue and agents "
            "log in through the CTI (R-LOGIN: `cti agents login`, feature code *11)"
        )
    sc.qualify_frequency_s = float(sim.get("qualify_frequency_s", sc.qualify_frequency_s))
    if sc.qualify_frequency_s < 0:
        raise ScenarioError("sim.qualify_frequency_s: must be >= 0")
    sc.missing_sounds = tuple(sim.get("missing_sounds", sc.missing_sounds))
    sc.sounds_dir = sim.get("sounds_dir", sc.sounds_dir)
    users = data.get("ami_users")
    if users:
        sc.ami_users = {u: (str(v["secret"]), str(v.get("read", "all"))) for u, v in users.items()}
        sc.ami_excludes = {
            u: (tuple(v.get("exclude_events", ())), tuple(v.get("exclude_channel_prefixes", ())))
            for u, v in users.items()
        }

    arr = data.get("arrivals", {})
    hourly = arr.get("hourly", [0.0] * 24)
    if len(hourly) != 24:
        raise ScenarioError(f"arrivals.hourly: needs 24 values (calls per hour), got {len(hourly)}")
    sc.hourly = tuple(float(x) for x in hourly)
    ads = []
    for i, ad in enumerate(arr.get("ads", [])):
        where = f"arrivals.ads[{i}]"
        try:
            ads.append(
                AdSpike(
                    float(ad["at_s"]),
                    float(ad["peak_per_min"]),
                    float(ad["decay_min"]),
                    float(ad.get("rise_s", 60.0)),
                )
            )
        except KeyError as e:
            raise ScenarioError(f"{where}: missing {e.args[0]!r}") from None
    sc.ads = tuple(ads)

    queues = []
    for i, q in enumerate(data.get("queues", [{"name": "sales"}])):
        strategy = q.get("strategy", "rrmemory")
        if strategy not in ("rrmemory", "leastrecent", "ringall", "linear", "fewestcalls", "random"):
            raise ScenarioError(f"queues[{i}].strategy: unsupported {strategy!r}")
        queues.append(
            QueueConfig(
                name=q["name"],
                strategy=strategy,
                timeout=float(q.get("timeout", 10)),
                retry=float(q.get("retry", 2)),
                autopause=bool(q.get("autopause", True)),
                wrapuptime=float(q.get("wrapuptime", 0)),
                servicelevel=int(q.get("servicelevel", 60)),
                joinempty=bool(q.get("joinempty", False)),
                leavewhenempty=bool(q.get("leavewhenempty", False)),
                max_wait=float(q.get("max_wait", 60)),
                maxlen=int(q.get("maxlen", 0)),
            )
        )
    sc.queues = tuple(queues)

    sc.shifts = {
        k: Shift(_hhmm(v["start"], f"shifts.{k}.start"), _hhmm(v["end"], f"shifts.{k}.end"))
        for k, v in data.get("shifts", {}).items()
    }

    profiles = {"default": AgentProfile()}
    for k, p in data.get("profiles", {}).get("agent", {}).items():
        w = f"profiles.agent.{k}"
        d = AgentProfile()
        profiles[k] = AgentProfile(
            answer_delay=Dist.parse(p.get("answer_delay", 3.0), w + ".answer_delay"),
            no_answer_chance=float(p.get("no_answer_chance", d.no_answer_chance)),
            talk_time=Dist.parse(p.get("talk_time", 60.0), w + ".talk_time"),
            hangup_first_chance=float(p.get("hangup_first_chance", 0.0)),
            break_chance=float(p.get("break_chance", 0.0)),
            break_duration=Dist.parse(p.get("break_duration", 300.0), w + ".break_duration"),
            break_reason=str(p.get("break_reason", "break")),
            unpause_after_autopause=float(p.get("unpause_after_autopause", 20.0)),
        )
    sc.agent_profiles = profiles
    c = data.get("profiles", {}).get("caller", {})
    sc.caller = CallerProfile(
        patience=Dist.parse(c.get("patience", 120.0), "profiles.caller.patience"),
        dtmf=tuple(str(x) for x in c.get("dtmf", ())),
        message_s=float(c.get("message_s", 5.0)),
        name_chance=float(c.get("name_chance", 0.3)),
        hostile_name_chance=float(c.get("hostile_name_chance", 0.0)),
        landline_chance=float(c.get("landline_chance", 0.2)),
        ivr_hangup_chance=float(c.get("ivr_hangup_chance", 0.0)),
    )

    agents = []
    for i, a in enumerate(data.get("agents", [])):
        where = f"agents[{i}]"
        if "id" not in a:
            raise ScenarioError(f"{where}: missing 'id'")
        prof = a.get("profile", "default")
        if prof not in profiles:
            raise ScenarioError(f"{where}.profile: unknown profile {prof!r}")
        shift = a.get("shift", "")
        if shift and shift not in sc.shifts:
            raise ScenarioError(f"{where}.shift: unknown shift {shift!r}")
        agents.append(
            AgentConfig(
                id=a["id"],
                name=a.get("name", a["id"]),
                interface=a.get("interface", f"PJSIP/{a['id']}"),
                did=str(a.get("did", "")),
                group=a.get("group", ""),
                profile=prof,
                penalty=int(a.get("penalty", 0)),
                queues=tuple(a.get("queues", ["sales"])),
                shift=shift,
            )
        )
    count = sim.get("agent_count", data.get("agent_count"))
    if count:  # shorthand: agent1..agentN with one profile and shift
        tmpl = data.get("agent_template", {})
        for n in range(1, int(count) + 1):
            agents.append(
                AgentConfig(
                    id=f"agent{n}",
                    name=f"Agent {n}",
                    interface=f"PJSIP/agent{n}",
                    did=str(int(tmpl["did_base"]) + n) if "did_base" in tmpl else "",
                    group=tmpl.get("group", ""),
                    profile=tmpl.get("profile", "default"),
                    penalty=int(tmpl.get("penalty", 0)),
                    queues=tuple(tmpl.get("queues", ["sales"])),
                    shift=tmpl.get("shift", ""),
                )
            )
    sc.agents = tuple(agents)
    if "outbound" in data:
        sc.outbound = parse_outbound(data["outbound"])
    return sc


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {p}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{p}: not a TOML scenario: {e}") from None
    if not data:
        raise ScenarioError(f"{p}: the scenario is empty")
    return parse_scenario(data, name=p.stem)
