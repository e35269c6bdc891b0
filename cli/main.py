"""The `kran` command: docker's command names, flags, output and exit codes.

Every command reaches the cluster only through the SDK (`kran.client`).
Errors print one line on stderr and exit 1, as the docker CLI does.

Commands are imported when they are invoked (or listed by --help), not at
start-up: `kran run` loads the run command and the SDK it needs, and
`kran --version` neither, which keeps the interpreter's start short.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

import kran
from kran.defaults import CONTEXT_ENV, HOST_ENV

# Top-level name -> "module:attribute" of its command (--help sorts them, as click does).
COMMANDS = {
    "container": "cli.containers:container_group",
    "run": "cli.run:run",
    "create": "cli.run:create",
    "start": "cli.containers:start",
    "stop": "cli.containers:stop",
    "restart": "cli.containers:restart",
    "kill": "cli.containers:kill",
    "rm": "cli.containers:remove",
    "rename": "cli.containers:rename",
    "wait": "cli.containers:wait",
    "logs": "cli.logs:logs",
    "attach": "cli.execs:attach",
    "exec": "cli.execs:exec_",
    "stats": "cli.stats:stats",
    "top": "cli.stats:top",
    "diff": "cli.stats:diff",
    "commit": "cli.stats:commit",
    "cp": "cli.cp:cp",
    "ps": "cli.ps:list_containers",
    "inspect": "cli.containers:inspect_any",
    "image": "cli.images:image_group",
    "images": "cli.images:list_images",
    "rmi": "cli.images:remove_images",
    "history": "cli.images:history",
    "tag": "cli.images:tag",
    "import": "cli.image_io:import_image",
    "build": "cli.build:build",
    "builder": "cli.build:builder_group",
    "load": "cli.image_io:load",
    "save": "cli.image_io:save",
    "pull": "cli.registry:pull",
    "push": "cli.registry:push",
    "login": "cli.registry:login",
    "logout": "cli.registry:logout",
    "search": "cli.registry:search",
    "node": "cli.nodes:node_group",
    "service": "cli.services:service_group",
    "events": "cli.events:events",
    "context": "cli.contexts:context_group",
    "version": "cli.system:version",
    "info": "cli.system:info",
}


class KranGroup(click.Group):
    """The top-level group: loads commands on demand, turns kran errors into docker's one line."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.commands[cmd_name] = getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `kran images | head`: the reader left, which is not an error;
            # point stdout at /dev/null so the final flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except Exception as exc:
            # kran.errors (and grpc with it) is loaded by the commands that talk
            # to the cluster; without it loaded, exc cannot be one of its kinds.
            errors = sys.modules.get("kran.errors")
            if errors is None or not isinstance(exc, errors.KranError):
                raise
            from cli.session import error_line  # noqa: PLC0415 - loaded with kran.errors
            click.echo(error_line(exc), err=True)
            ctx.exit(1)


@click.group(cls=KranGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-H", "--host", metavar="HOST:PORT[,HOST:PORT...]",
              help=f"Controllers to connect to, tried in turn (env {HOST_ENV}, "
                   "default 127.0.0.1:7640).")
@click.option("-c", "--context", metavar="NAME",
              help=f"Context to use (env {CONTEXT_ENV}; overrides {HOST_ENV} and "
                   "the one set with 'kran context use').")
@click.version_option(kran.__version__, "--version", "-v", prog_name="kran",
                      message="%(prog)s version %(version)s")
@click.pass_context
def cli(ctx: click.Context, host: str | None, context: str | None) -> None:
    """A multi-host container engine."""
    from cli.session import Session  # noqa: PLC0415 - the SDK only once a command runs

    session = Session(host, context)
    ctx.obj = session
    ctx.call_on_close(session.close)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="kran")
