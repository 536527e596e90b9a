"""Every `cti` subcommand, given a bad setting, argument or file, prints ONE line naming what is wrong
and exits 2 — never a traceback. The commands are read from COMMANDS, so one added later is covered
without touching this file; the cases are generated from each command's own parameters."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cti.cli import COMMANDS, main


def _leaves() -> Iterator[tuple[list[str], click.Command]]:
    def walk(path: list[str], cmd: click.Command) -> Iterator[tuple[list[str], click.Command]]:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk([*path, name], sub)
        else:
            yield path, cmd

    for name, target in sorted(COMMANDS.items()):
        module, attr = target.split(":")
        yield from walk([name], getattr(importlib.import_module(module), attr))


LEAVES = list(_leaves())
IDS = [" ".join(p) for p, _ in LEAVES]


def _readable_file(t: click.ParamType) -> bool:
    return (isinstance(t, click.File) and "r" in t.mode) or (
        isinstance(t, click.Path) and t.exists and t.file_okay and not t.dir_okay
    )


def _filler(p: click.Parameter, tmp: Path) -> str:
    """A value that passes click's own parsing of `p`."""
    t = p.type
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, click.IntRange | click.FloatRange):
        return str(t.min if t.min is not None else 1)
    if isinstance(t, click.types.IntParamType | click.types.FloatParamType):
        return "1"
    if isinstance(t, click.Path) and t.exists and not t.file_okay:
        return str(tmp)
    if _readable_file(t) or isinstance(t, click.File | click.Path):
        f = tmp / f"{p.name}.txt"
        f.write_text("x\n")
        return str(f)
    return "x"


def _args(cmd: click.Command, tmp: Path, override: dict[str, str] | None = None) -> list[str]:
    """Arguments for `cmd`: every required parameter filled, `override` values for the named ones."""
    override = override or {}
    args: list[str] = []
    positional: list[str] = []
    for p in cmd.params:
        if p.name in override or (p.required and not getattr(p, "is_flag", False)):
            value = override.get(p.name or "", None) or _filler(p, tmp)
            if isinstance(p, click.Argument):
                positional.append(value)
            else:
                args += [p.opts[0], value]
    return [*args, *positional]


def _run(argv: list[str], env: dict[str, str] | None = None) -> Result:
    base = {"CTI_CONFIG": "", "CTI_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    return CliRunner().invoke(main, argv, env={**base, **(env or {})}, catch_exceptions=True)


def _one_line_exit_2(r: Result, *names: str) -> str:
    out = r.output.strip()
    assert r.exit_code == 2, (r.exit_code, out, r.exception)
    assert isinstance(r.exception, SystemExit), repr(r.exception)  # not an exception escaping
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    low = out.lower()
    if names:
        assert any(n.lower() in low for n in names), (names, out)
    return out


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=IDS)
def test_a_bad_setting_is_named_in_one_line(path, cmd, tmp_path):
    r = _run([*path, *_args(cmd, tmp_path)], env={"CTI_TIMEZONE": "Mars/Olympus_Mons"})
    _one_line_exit_2(r, "timezone")


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=IDS)
def test_a_missing_or_broken_config_file_is_named_in_one_line(path, cmd, tmp_path):
    r = _run(["--config", str(tmp_path / "nope.toml"), *path, *_args(cmd, tmp_path)])
    _one_line_exit_2(r, "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[ami\nport = 'x'\n")
    r = _run(["--config", str(broken), *path, *_args(cmd, tmp_path)])
    _one_line_exit_2(r, "broken.toml")


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=IDS)
def test_an_unknown_option_is_named_in_one_line(path, cmd, tmp_path):
    r = _run([*path, "--no-such-option", *_args(cmd, tmp_path)])
    _one_line_exit_2(r, "--no-such-option")


def _bad_values(cmd: click.Command) -> Iterator[tuple[click.Parameter, str]]:
    for p in cmd.params:
        t = p.type
        if getattr(p, "is_flag", False):
            continue
        if isinstance(t, click.Choice):
            yield p, "no-such-choice"
        elif isinstance(t, click.types.IntParamType | click.types.FloatParamType | click.IntRange):
            yield p, "not-a-number"
        elif (isinstance(t, click.Path) and t.exists) or (isinstance(t, click.File) and "r" in t.mode):
            yield p, "/nonexistent/cti-missing"


CASES = [(path, cmd, p, v) for path, cmd in LEAVES for p, v in _bad_values(cmd)]


@pytest.mark.parametrize(("path", "cmd", "param", "value"), CASES,
                         ids=[f"{' '.join(c[0])} {c[2].name}={c[3]}" for c in CASES])  # fmt: skip
def test_a_bad_argument_value_is_named_in_one_line(path, cmd, param, value, tmp_path):
    r = _run([*path, *_args(cmd, tmp_path, {param.name: value})])
    _one_line_exit_2(r, *param.opts, param.human_readable_name, param.name or "")


JUNK_CASES = [(path, cmd, p) for path, cmd in LEAVES for p in cmd.params if _readable_file(p.type)]


@pytest.mark.parametrize(("path", "cmd", "param"), JUNK_CASES,
                         ids=[f"{' '.join(c[0])} {c[2].name}" for c in JUNK_CASES])  # fmt: skip
@pytest.mark.parametrize("junk", [b"\xff\xfe\x00garbage\x00\x9c", b"not,a,valid\nfile\x00\n", b""])
def test_a_junk_file_is_refused_in_one_line(path, cmd, param, junk, tmp_path, db_url):
    f = tmp_path / "junk.bin"
    f.write_bytes(junk)
    r = _run([*path, *_args(cmd, tmp_path, {param.name: str(f)})], env={"CTI_DATABASE_URL": db_url})
    _one_line_exit_2(r)


# values that pass click's parsing but that the command itself must refuse; a command taking a day,
# a time or a number as text belongs here
SEMANTIC = [
    (["facts", "rebuild", "--since", "yesterdayish"], "yesterdayish"),
    (["fines", "rebuild", "--since", "2026-13-45"], "2026-13-45"),
    (["fines", "list", "--since", "soon"], "soon"),
    (["fines", "waive", "999999", "--by", "x", "--reason", "y"], "--by"),
    (["roster", "set", "someday", "day", "1001"], "someday"),
    (["roster", "show", "not-a-day"], "not-a-day"),
    (["reports", "show", "weekly-ish", "2026-11-28"], "weekly-ish"),
    (["reports", "show", "day", "28/11/2026"], "28/11/2026"),
    (
        [
            "peak",
            "schedule",
            "add",
            "--channel",
            "c",
            "--program",
            "p",
            "--start",
            "at eight",
            "--duration",
            "30",
        ],
        "at eight",
    ),
    (["peak", "schedule", "remove", "999999"], "999999"),
    (["callbacks", "show", "999999"], "999999"),
    (["callbacks", "cancel", "999999"], "999999"),
    (["callbacks", "add", "--number", "call-me-maybe", "--did", "400"], "call back"),
]


@pytest.mark.parametrize(("argv", "named"), SEMANTIC, ids=[" ".join(a[:3]) for a, _ in SEMANTIC])
def test_a_value_the_command_refuses_is_named_in_one_line(argv, named, db_url, tmp_path):
    _one_line_exit_2(_run(argv, env={"CTI_DATABASE_URL": db_url}), named)


def test_reports_call_log_refuses_a_bad_day(db_url, tmp_path):
    r = _run(["reports", "call-log", "2026-02-30", str(tmp_path / "x.csv")], env={"CTI_DATABASE_URL": db_url})
    _one_line_exit_2(r, "2026-02-30")


def test_a_short_password_is_refused_before_anything_is_stored(db_url):
    r = _run(["user", "add", "bob", "--role", "agent", "--password-env", "PW"],
             env={"CTI_DATABASE_URL": db_url, "PW": "short"})  # fmt: skip
    assert "short" not in _one_line_exit_2(r, "at least 8 characters")  # the password is not echoed


def test_a_database_that_refuses_connections_is_one_line():
    # port 1 on localhost: nothing listens there
    _one_line_exit_2(_run(["callbacks", "list"]), "connect")


def test_an_unexpected_error_still_shows_its_traceback(monkeypatch):
    """Bugs are not dressed up as bad input: only the listed exception types are translated."""
    import cti.commands.check as check

    def boom(*_a, **_k):
        raise KeyError("a bug")

    monkeypatch.setattr(check, "load_policy", boom, raising=False)
    monkeypatch.setattr(check, "settings_from", boom)
    r = _run(["check"])
    assert r.exit_code == 1 and isinstance(r.exception, KeyError)


def test_the_demo_with_a_short_password_as_a_new_user_types_it(tmp_path):
    """The issue's reproduction, as a real process: one line, exit 2, the password not echoed."""
    r = subprocess.run([sys.executable, "-m", "cti", "demo"], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "CTI_DEMO_PASSWORD": "demo123",
                                          "HOME": str(tmp_path)})  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "demo_password" in r.stderr and "at least 8 characters" in r.stderr
    assert "demo123" not in r.stderr
