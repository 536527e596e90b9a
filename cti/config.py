"""Settings: one typed object from a TOML file plus CTI_* environment variables.

Precedence (highest first): CTI_* environment (and DATABASE_URL), the TOML file named by
CTI_CONFIG (or ./cti.toml when present), the defaults below. Credentials never live in code.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cti import defaults


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "cti"
    secret: SecretStr = SecretStr("")
    action_timeout_s: float = Field(10.0, gt=0)
    ping_interval_s: float = Field(5.0, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    # PJSIP endpoints of the carrier trunks (asterisk-conf/pjsip.conf): a CDR whose channel is one of
    # them is an inbound caller (cti/callbacks/cdr_sweep.py, decision 0410)
    trunk_endpoints: list[str] = Field(default_factory=lambda: ["trunk"], min_length=1)

    @field_validator("trunk_endpoints", mode="before")
    @classmethod
    def _endpoint_list(cls, v: Any) -> Any:
        """`trunk,carrier_b` from the environment; a TOML list as it is. Names as pjsip.conf allows."""
        items = [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v
        for x in items if isinstance(items, list) else ():
            if not isinstance(x, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", x):
                raise ValueError(f"not a PJSIP endpoint name: {x!r}")
        return items


class AgiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    session_timeout_s: float = Field(5.0, gt=0)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # /metrics from another host (Prometheus): `Authorization: Bearer <token>`; loopback needs none
    metrics_token: SecretStr | None = None
    # cookies marked Secure: "auto" when the request came over TLS (directly, or per a trusted
    # proxy's X-Forwarded-Proto), "always" / "never" to force it
    secure_cookies: str = Field("auto", pattern="^(auto|always|never)$")
    # addresses of reverse proxies whose X-Forwarded-Proto / X-Forwarded-For are believed
    trusted_proxies: list[str] = Field(default_factory=list)
    session_idle_minutes: int = Field(30, ge=1)  # unused this long: log in again
    session_max_hours: int = Field(12, ge=1)  # from login, however active
    login_max_failures: int = Field(5, ge=1)  # per user name within login_window_minutes: locked
    login_max_failures_per_address: int = Field(20, ge=1)
    login_window_minutes: int = Field(15, ge=1)  # also how long a lockout lasts

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _address_list(cls, v: Any) -> Any:
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v


class LineTestSettings(_Section):
    """R-LINE-TEST (cti/linetest): which numbers are test-called, and how the test call is recognised
    when it comes back in: by the caller number the carrier presents for our own outbound calls."""

    # the center's main numbers; every active agent's personal DID is tested as well
    dids: list[str] = Field(default_factory=list)
    # the number our test calls arrive from (ask the carrier; usually the trunk's billing number).
    # Unset: no line tests run (cti linetest run says so), and no inbound call is taken for one.
    caller_id: str | None = Field(None, pattern=r"^\+?[0-9]{3,20}$")
    timeout_s: float = Field(45.0, gt=0, le=300)  # out through the carrier and back in

    @field_validator("dids", mode="before")
    @classmethod
    def _did_list(cls, v: Any) -> Any:
        items = [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v
        for x in items if isinstance(items, list) else ():
            if not isinstance(x, str) or not re.fullmatch(r"\+?[0-9]{3,20}", x):
                raise ValueError(f"not a DID: {x!r}")
        return items


class RecordingSettings(_Section):
    # strftime fields from the call's answer time plus {linkedid} and {uniqueid}
    path_pattern: str = "/var/spool/asterisk/monitor/%Y/%m/%d/{linkedid}.wav"
    retention_days: int = Field(180, ge=1)


class PromptSettings(_Section):
    # what Asterisk plays for a zh channel (STREAM FILE "cti/x" -> <dir>/cti/x.wav); `cti serve` and
    # `cti check` report manifest prompts missing here, `cti prompts build` writes here by default
    dir: Path = Path("/var/lib/asterisk/sounds/zh")
    # a center's own recordings, same names (cti/night-welcome.wav ...): they win at build time
    custom_dir: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid")

    database_url: str | None = None
    data_dir: Path = Path(os.path.expanduser("~/.local/share/cti"))
    # the event spool shared with the degraded-mode script (its CTI_SPOOL_DIR); default <data_dir>/spool
    spool_dir: Path | None = None
    timezone: str = defaults.TIMEZONE
    queue: str = defaults.QUEUE  # the inbound queue the CTI watches, routes to and fills (CTI_QUEUE)
    default_did: str = defaults.DID  # presented on callbacks without a DID of their own (CTI_DEFAULT_DID)
    policy_file: Path | None = None  # None: the policy shipped with the package
    log_format: str = Field("auto", pattern="^(auto|json|console)$")
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")
    ami: AmiSettings = AmiSettings()
    # Several Asterisk servers (decision 0110): `pbx` names the one `ami` reaches (agents.pbx), `pbxes`
    # adds more this process serves ([pbxes.south] host/port/username/secret in cti.toml)
    pbx: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    pbxes: dict[str, AmiSettings] = Field(default_factory=dict)
    agi: AgiSettings = AgiSettings()
    web: WebSettings = WebSettings()
    recording: RecordingSettings = RecordingSettings()
    linetest: LineTestSettings = LineTestSettings()
    prompts: PromptSettings = PromptSettings()
    demo_password: SecretStr | None = None  # `cti demo`'s supervisor login; printed fresh when unset

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v

    @field_validator("demo_password")
    @classmethod
    def _demo_password(cls, v: SecretStr | None) -> SecretStr | None:
        """Checked here so `cti demo` names the setting before it starts anything."""
        if v is not None:
            from cti.web.auth import check_password

            check_password(v.get_secret_value())
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def spool(self) -> Path:
        """Where spooled events wait for PostgreSQL: CTI_SPOOL_DIR, the variable compose sets for
        the degraded script too, so both processes name the same directory."""
        return self.spool_dir if self.spool_dir is not None else Path(self.data_dir) / "spool"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() merges file and environment itself, so the precedence is in one place
        return (init_settings,)


def _format_validation(e: ValidationError, origin: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        secret = any(w in key for w in ("password", "secret"))  # never echo a credential
        got = "" if secret else f" (got {err.get('input')!r})"
        lines.append(f"{origin}: {key}: {err['msg']}{got}")
    return "\n".join(lines)


def load_settings(path: Path | str | None = None, env: dict[str, str] | None = None) -> Settings:
    """Load settings; raise ConfigError naming the key on any bad value."""
    env = dict(os.environ if env is None else env)
    file_values: dict[str, Any] = {}
    path = Path(path) if path else (Path(env["CTI_CONFIG"]) if env.get("CTI_CONFIG") else None)
    if path is None and Path("cti.toml").is_file():
        path = Path("cti.toml")
    origin = str(path) if path else "environment"
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"config file {path} does not exist") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    if env.get("DATABASE_URL") and not env.get("CTI_DATABASE_URL"):
        env["CTI_DATABASE_URL"] = env["DATABASE_URL"]
    values = _deep_merge(file_values, _env_values(env))
    try:
        return Settings(**values)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, origin)) from None


def _env_values(env: dict[str, str]) -> dict[str, Any]:
    """CTI_AMI__PORT=5039 -> {"ami": {"port": "5039"}}; pydantic converts the types."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.upper().startswith("CTI_") or key.upper() == "CTI_CONFIG":
            continue
        parts = key[4:].lower().split("__")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
