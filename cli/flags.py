"""Docker's flag errors and exit statuses for the container commands.

docker exits 125 for a bad flag and prints the error, the usage line and a
hint; `run` prefixes its own errors with "docker:". A container's exit
status becomes the command's.
"""

from __future__ import annotations

from typing import Any

import click

from kran import errors

PROG = "kran"


class StatusError(click.ClickException):
    """An error with its own exit status (docker's cli.StatusError); message may be empty."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code

    def show(self, file: Any = None) -> None:
        if self.message:
            click.echo(self.message, err=True)


class FlagValueError(click.BadParameter):
    """A flag's value does not parse; carries the value for docker's message."""

    def __init__(self, value: str, reason: str):
        super().__init__(reason)
        self.value = value


def flag_names(param: click.Parameter | None) -> str:
    """An option as pflag names it in errors: "-m, --memory" or "--cpus"."""
    if not isinstance(param, click.Option):
        return param.name if param is not None and param.name else ""
    short = [o for o in param.opts if not o.startswith("--")]
    long = [o for o in param.opts if o.startswith("--")]
    return ", ".join(short[:1] + long[:1])


def with_help(message: str, command: str) -> str:
    """docker's withHelp: "docker: <error>" and where to find help."""
    return f"{PROG}: {message}\n\nRun '{PROG} {command} --help' for more information"


def usage_line(ctx: click.Context) -> str:
    """The command's usage, as docker prints it after a flag error."""
    pieces = " ".join(ctx.command.collect_usage_pieces(ctx))
    return f"Usage:  {ctx.command_path} {pieces}".rstrip()


class DockerCommand(click.Command):
    """A command whose usage errors read and exit as docker's do.

    A bad or unknown flag exits 125 with the usage and a hint; a missing
    argument exits 1 with "kran: 'kran x' requires ...".
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.MissingParameter as exc:
            if isinstance(exc.param, click.Argument):
                raise StatusError(self._arguments_error(ctx), 1) from None
            raise StatusError(self._flag_error(ctx, exc.format_message()), 125) from None
        except click.NoSuchOption as exc:
            raise StatusError(self._flag_error(ctx, f"unknown flag: {exc.option_name}"),
                              125) from None
        except FlagValueError as exc:
            message = f'invalid argument "{exc.value}" for "{flag_names(exc.param)}" flag: ' \
                      f"{exc.message}"
            raise StatusError(self._flag_error(ctx, message), 125) from None
        except click.UsageError as exc:
            raise StatusError(self._flag_error(ctx, exc.format_message()), 125) from None

    def _arguments_error(self, ctx: click.Context) -> str:
        """docker's RequiresMinArgs / ExactArgs message."""
        arguments = [p for p in self.params if isinstance(p, click.Argument) and p.required]
        count = len(arguments)
        plural = "argument" if count == 1 else "arguments"
        exact = all(p.nargs == 1 for p in arguments)
        needs = f"requires {count} {plural}" if exact and count > 1 else \
            f"requires at least {count} {plural}"
        hint = "Run" if exact and count > 1 else "See"
        return f"{PROG}: '{ctx.command_path}' {needs}\n\n{usage_line(ctx)}\n\n" \
               f"{hint} '{ctx.command_path} --help' for more information"

    @staticmethod
    def _flag_error(ctx: click.Context, message: str) -> str:
        return f"{message}\n\n{usage_line(ctx)}\n\n" \
               f"Run '{ctx.command_path} --help' for more information"


class CheckedType(click.ParamType):
    """A flag value checked by a kran.client.config parser (errors.InvalidArgument)."""

    def __init__(self, name: str, parse: Any):
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except errors.InvalidArgument as exc:
            raise FlagValueError(value, str(exc)) from None


def start_error_status(message: str) -> int:
    """docker's toStatusError: 127 for a missing command, 126 for one that cannot run."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125
