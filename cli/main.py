"""The `kran` command: docker's command names, flags, output and exit codes.

Every command reaches the cluster only through the SDK (`kran.client`).
Errors print one line on stderr and exit 1, as the docker CLI does.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

import kran
from cli import containers, images, nodes, system
from cli.session import Session, error_line
from kran import errors
from kran.defaults import HOST_ENV


class KranGroup(click.Group):
    """The top-level group: turns kran errors into docker's one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.KranError as exc:
            click.echo(error_line(exc), err=True)
            ctx.exit(1)
        except BrokenPipeError:
            # `kran images | head`: the reader left, which is not an error;
            # point stdout at /dev/null so the final flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)


@click.group(cls=KranGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-H", "--host", envvar=HOST_ENV, metavar="HOST:PORT",
              help=f"Controller to connect to (env {HOST_ENV}, default 127.0.0.1:7640).")
@click.version_option(kran.__version__, "--version", "-v", prog_name="kran",
                      message="%(prog)s version %(version)s")
@click.pass_context
def cli(ctx: click.Context, host: str | None) -> None:
    """A multi-host container engine."""
    session = Session(host)
    ctx.obj = session
    ctx.call_on_close(session.close)


for area in (containers, images, nodes, system):
    area.register(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="kran")
