"""`cti prompts`: build the callers' prompts offline, and list which are missing where Asterisk reads."""

from __future__ import annotations

from pathlib import Path

import click

from cti.commands.common import settings_from
from cti.prompts import manifest, missing
from cti.prompts.build import BuildError, build


@click.group()
def prompts() -> None:
    """Chinese prompts for every sound file the dialplan and the IVR play (cti/prompts/manifest.toml)."""


@prompts.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Default: prompts.dir.")
@click.option(
    "--custom",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The center's own recordings, same names (cti/night-welcome.wav ...); they win. "
    "Default: prompts.custom_dir.",
)
@click.pass_context
def build_cmd(ctx: click.Context, out: Path | None, custom: Path | None) -> None:
    """Write every prompt as 8 kHz mono 16-bit wav (espeak-ng + sox, no network)."""
    settings = settings_from(ctx)
    out = out or settings.prompts.dir
    custom = custom or settings.prompts.custom_dir
    try:
        made = build(out, custom)
    except BuildError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot write prompts to {out}: {e.strerror or e}") from None
    own = sum(1 for b in made if b.source == "custom")
    click.echo(f"{len(made)} prompts written to {out} ({own} from own recordings)")


@prompts.command("list")
@click.option(
    "--dir", "sounds_dir", type=click.Path(file_okay=False, path_type=Path), help="Default: prompts.dir."
)
@click.pass_context
def list_cmd(ctx: click.Context, sounds_dir: Path | None) -> None:
    """Every prompt with its text, and whether Asterisk's sounds directory has it."""
    settings = settings_from(ctx)
    sounds_dir = sounds_dir or settings.prompts.dir
    gone = set(missing(sounds_dir))
    for p in manifest().values():
        state = "MISSING" if p.name in gone else "ok"
        click.echo(f"{state:8} {p.name:32} {p.text or f'tone {p.tone}'}")
    if gone:
        raise SystemExit(1)
