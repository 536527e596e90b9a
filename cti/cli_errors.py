"""How the `cti` command reports bad input: ONE line naming what is wrong, exit status 2, no traceback.

Done once, around every subcommand (cti/cli.py), so commands added later get it without doing anything.
What counts as bad input is decided by exception TYPE, never by catching everything: a real bug (an
exception not listed here) still shows its traceback.
"""

from __future__ import annotations

import errno
import socket
from typing import IO, Any

import click
from pydantic import ValidationError

from cti.config import ConfigError

EXIT_BAD_INPUT = 2
_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class BadInput(click.ClickException):
    """Printed as one line (`cti: <what is wrong>`), exit status 2."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(one_line(message))
        self.command = command

    def show(self, file: IO[Any] | None = None) -> None:
        hint = f" (see: {self.command} --help)" if self.command else ""
        click.echo(f"cti: {self.message}{hint}", err=True, file=file)


def one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip()) or "bad input"


def _validation(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in e.errors())


def is_ours(e: BaseException) -> bool:
    """A ValueError subclass the project defines for bad input (RosterError, ScheduleError, ...)."""
    return isinstance(e, ValueError) and type(e).__module__.split(".")[0] == "cti"


def translate(e: BaseException) -> BadInput | None:
    """The one-line message for an exception that means bad input; None for anything else (a bug)."""
    if isinstance(e, BadInput):
        return e
    if isinstance(e, click.UsageError):
        where = e.ctx.command_path if e.ctx else None
        return BadInput(e.format_message(), where)
    if type(e) is click.ClickException or isinstance(e, click.BadParameter):
        # click's plain error class is what commands raise for "what you asked for is wrong";
        # subclasses (serve's StartupError ...) keep their own exit status
        return BadInput(e.format_message())
    if isinstance(e, ConfigError):
        return BadInput(f"configuration error: {e}")
    if isinstance(e, ValidationError):
        return BadInput(f"invalid value: {_validation(e)}")
    if is_ours(e):
        return BadInput(str(e))
    if isinstance(e, _FILE_ERRORS) and e.filename:
        return BadInput(f"{e.strerror or type(e).__name__}: {e.filename}")
    if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
        return BadInput(
            f"cannot connect (connection refused): {e}; is the server running, are the settings right?"
        )
    if isinstance(e, socket.gaierror):
        return BadInput(f"cannot resolve host name: {e}")
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return None
    if isinstance(
        e,
        asyncpg.InvalidCatalogNameError
        | asyncpg.InvalidAuthorizationSpecificationError
        | asyncpg.InvalidPasswordError,
    ):
        return BadInput(f"database: {e}")
    return None
