"""`kran run` and `kran create`: docker's flags to a container, and the run flow.

run = create, then (attached) Attach with start set, so no output is lost,
and the container's exit status becomes kran's; or (-d) Start and print the
id. Exit statuses are docker's: 125 when kran itself fails, 126 when the
command cannot be run, 127 when it is not found.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import click

from cli import registry, streams
from cli.flags import CheckedType, DockerCommand, StatusError, start_error_status, with_help
from cli.session import Session, error_line, pass_session
from kran import errors, reference
from kran.client import Container
from kran.client.config import memory_bytes, nano_cpus, parse_restart_policy

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
PULL_POLICIES = ("always", "missing", "never")
CONTEXT = {"allow_interspersed_args": False, "help_option_names": ["--help"]}


def read_env_file(path: str, environ: dict[str, str] | None = None) -> list[str]:
    """docker's --env-file: KEY=VALUE lines; "KEY" alone takes our environment's value.

    Blank lines and lines starting with # are skipped; leading whitespace is
    dropped, trailing whitespace kept; a key with whitespace is refused.
    """
    environ = os.environ if environ is None else environ
    try:
        with open(path, "rb") as envfile:
            raw = envfile.read()
    except OSError as exc:
        raise errors.InvalidArgument(f"open {path}: {exc.strerror.lower()}") from None
    lines = []
    for number, line_bytes in enumerate(raw.splitlines(), 1):
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidArgument(f"invalid env file ({path}): invalid utf8 bytes at "
                                         f"line {number}") from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, has_value, _ = line.partition("=")
        if not key:
            raise errors.InvalidArgument(
                f"invalid env file ({path}): no variable name on line '{line}'")
        if " " in key or "\t" in key:
            raise errors.InvalidArgument(
                f"invalid env file ({path}): variable '{key}' contains whitespaces")
        if has_value:
            lines.append(line)
        elif key in environ:
            lines.append(f"{key}={environ[key]}")
    return lines


def env_flag(value: str, environ: dict[str, str] | None = None) -> str:
    """docker's -e: "K=V" as is; "K" takes our environment's value when it has one."""
    environ = os.environ if environ is None else environ
    key, has_value, _ = value.partition("=")
    if not key:
        raise errors.InvalidArgument(f"invalid environment variable: {value}")
    if not has_value and key in environ:
        return f"{key}={environ[key]}"
    return value


def environment(options: Mapping[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    """The --env-file files' variables, then the -e flags', as "K=V" strings."""
    env = []
    for path in options.get("env_file") or ():
        env += read_env_file(path, environ)
    return env + [env_flag(e, environ) for e in options.get("env") or ()]


def pull_policy(value: str | None) -> str:
    """docker's --pull: always, missing (the default) or never."""
    if not value:
        return "missing"
    if value not in PULL_POLICIES:
        raise errors.InvalidArgument(
            f"invalid pull option: '{value}': must be one of \"always\", \"missing\" or "
            f"\"never\"")
    return value


def create_kwargs(options: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The flags of run/create as ContainerCollection.create() keywords.

    Env files come first, then -e, as docker orders them. Raises
    errors.InvalidArgument for a value that does not parse.
    """
    kwargs: dict[str, Any] = {
        "name": options.get("name") or None,
        "node": options.get("node") or None,
        "environment": environment(options, environ),
        "working_dir": options.get("workdir") or "",
        "user": options.get("user") or "",
        "hostname": options.get("hostname") or "",
        "labels": list(options.get("label") or ()),
        "tty": bool(options.get("tty")),
        "stdin_open": bool(options.get("interactive")),
        "stdin_once": bool(options.get("stdin_once")),
        "mem_limit": options.get("memory") or 0,
        "nano_cpus": options.get("cpus") or 0,
        "pids_limit": options.get("pids_limit") or 0,
        "init": bool(options.get("init")),
        "auto_remove": bool(options.get("rm")),
        "stop_signal": options.get("stop_signal") or "",
        "stop_timeout": options.get("stop_timeout") or 0,
        "constraints": list(options.get("constraint") or ()),
        # The flag is parsed to nano CPUs; the SDK takes CPUs, exactly.
        "reserve_cpus": Fraction(options.get("reserve_cpus") or 0, 1_000_000_000),
        "reserve_memory": options.get("reserve_memory") or 0,
    }
    policy = parse_restart_policy(options.get("restart") or "")
    if policy.name:
        kwargs["restart_policy"] = {"Name": policy.name,
                                    "MaximumRetryCount": policy.maximum_retry_count}
    if policy.name not in ("", "no") and kwargs["auto_remove"]:
        raise errors.InvalidArgument("conflicting options: cannot specify both --restart "
                                     "and --rm")
    if options.get("entrypoint") is not None:
        # --entrypoint is one word; "" resets the image's entrypoint, as docker.
        kwargs["entrypoint"] = [options["entrypoint"]] if options["entrypoint"] else []
    return kwargs


def container_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags run and create share."""
    decorators = [
        click.argument("image"),
        click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[COMMAND] [ARG...]"),
        click.option("--name", help="Assign a name to the container."),
        click.option("-e", "--env", multiple=True, metavar="LIST",
                     help="Set environment variables."),
        click.option("--env-file", multiple=True, metavar="LIST",
                     help="Read in a file of environment variables."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])."),
        click.option("-h", "--hostname", help="Container host name."),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image."),
        click.option("-l", "--label", multiple=True, metavar="LIST",
                     help="Set meta data on a container."),
        click.option("-m", "--memory", type=CheckedType("bytes", memory_bytes),
                     help="Memory limit (b, k, m, g)."),
        click.option("--cpus", type=CheckedType("decimal", nano_cpus),
                     help="Number of CPUs."),
        click.option("--pids-limit", type=int, help="Tune container pids limit (-1 unlimited)."),
        click.option("--restart", default="no", show_default=True,
                     help="Restart policy: no, on-failure[:max-retries], always, "
                          "unless-stopped."),
        click.option("--init", is_flag=True,
                     help="Run an init inside the container that forwards signals and "
                          "reaps processes."),
        click.option("--rm", is_flag=True,
                     help="Automatically remove the container when it exits."),
        click.option("-i", "--interactive", is_flag=True,
                     help="Keep STDIN open even if not attached."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("--stop-signal", help="Signal to stop the container."),
        click.option("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container."),
        click.option("--node", metavar="NODE",
                     help="Run on this node (id, id prefix or hostname)."),
        click.option("--constraint", multiple=True, metavar="list",
                     help='Placement constraint, e.g. "node.labels.zone==a" (repeatable).'),
        click.option("--reserve-cpus", type=CheckedType("decimal", nano_cpus),
                     help="CPUs the node keeps for this container when placing others."),
        click.option("--reserve-memory", type=CheckedType("bytes", memory_bytes),
                     help="Memory the node keeps for this container (b, k, m, g)."),
        click.option("--pull", default="missing", show_default=True,
                     help='Pull image before running ("always", "missing", "never").'),
        click.option("-q", "--quiet", is_flag=True, help="Suppress the pull output."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _image_missing(exc: errors.KranError) -> bool:
    return isinstance(exc, errors.NotFound) and str(exc).startswith("No such image")


def familiar(image: str) -> str:
    """The image as docker names it in "Unable to find image": busybox -> busybox:latest."""
    try:
        return reference.parse(image).familiar()
    except errors.KranError:
        return image


def create_container(session: Session, options: dict[str, Any], command_name: str,
                     daemon_status: int) -> Container:
    """Create the container the flags describe, pulling its image as --pull says.

    As docker: "always" pulls first; "missing" pulls when the node has no
    such image and creates again; "never" fails. Pull progress goes to
    stderr (stdout is the container's). Errors exit as docker's run/create do.
    """
    try:
        kwargs = create_kwargs(options)
        policy = pull_policy(options.get("pull"))
    except errors.InvalidArgument as exc:
        raise StatusError(with_help(str(exc), command_name), 125) from None

    def failed(message: str) -> StatusError:
        if daemon_status == 125:
            return StatusError(with_help(message, command_name), 125)
        return StatusError(message, daemon_status)

    def create() -> Container:
        return session.client.containers.create(options["image"], list(options["command"]),
                                                **kwargs)

    try:
        if policy == "always":
            _pull(session, options, failed)
        try:
            return create()
        except errors.KranError as exc:
            if not (_image_missing(exc) and policy == "missing"):
                raise
            if not options.get("quiet"):
                click.echo(f"Unable to find image '{familiar(options['image'])}' locally",
                           err=True)
        _pull(session, options, failed)
        return create()
    except errors.KranError as exc:
        if daemon_status == 125:
            raise StatusError(with_help(error_line(exc), command_name), 125) from None
        raise


def _pull(session: Session, options: dict[str, Any],
          failed: Callable[[str], StatusError]) -> None:
    """Pull the image for run/create, progress on stderr; a failure exits as docker's."""
    error = registry.pull_image(session, options["image"], sys.stderr,
                                quiet=bool(options.get("quiet")), node=options.get("node"))
    if error is not None:
        raise failed(f"Error response from daemon: {error}")


def _start_failed(exc_text: str, code: int | None = None) -> StatusError:
    status = code if code else start_error_status(exc_text)
    return StatusError(with_help(exc_text, "run"), status)


def run_attached(container: Container, options: dict[str, Any]) -> int:
    """Attach (starting the container), stream until it ends; the exit status."""
    stdin, tty = options["interactive"], options["tty"]
    session = container.attach_socket(stdin=stdin, stdout=True, stderr=True,
                                      detach_keys=options["detach_keys"], start=True)
    try:
        streams.stream(session, stdin=stdin, tty=tty,
                       proxy=signal_forwarder(container) if options["sig_proxy"] else None)
    except errors.KranError as exc:
        raise _start_failed(error_line(exc)) from None
    if session.detached:
        return 0
    if session.error:
        raise _start_failed(f"Error response from daemon: {session.error}", session.exit_code)
    if session.exit_code is not None:
        return session.exit_code
    try:
        return container.wait()["StatusCode"]
    except errors.NotFound:
        return 0


def signal_forwarder(container: Container) -> Callable[[str], None]:
    """docker's --sig-proxy: send a signal we receive on to the container."""
    def forward(signal_name: str) -> None:
        try:
            container.kill(signal_name)
        except errors.KranError:
            pass  # the container may have ended meanwhile; docker ignores this too
    return forward


def check_tty(interactive: bool, tty: bool) -> None:
    """docker's CheckTty: -i and -t need a terminal on our stdin."""
    if tty and interactive and not streams.stdin_is_terminal():
        raise StatusError("the input device is not a TTY", 1)


@click.command("run", cls=DockerCommand, context_settings=CONTEXT,
               short_help="Create and run a new container from an image.")
@container_options
@click.option("-d", "--detach", is_flag=True,
              help="Run container in background and print container ID.")
@click.option("--detach-keys", default=DEFAULT_DETACH_KEYS, show_default=True,
              help="Override the key sequence for detaching a container.")
@click.option("--sig-proxy/--no-sig-proxy", default=True,
              help="Proxy received signals to the process.")
@pass_session
def run(session: Session, **options: Any) -> None:
    """Create and run a new container from an image."""
    if not options["detach"]:
        check_tty(options["interactive"], options["tty"])
        # As docker run: an attached stdin is the container's whole input, so
        # its end closes the container's stdin.
        options["stdin_once"] = options["interactive"]
    container = create_container(session, options, "run", 125)
    if options["detach"]:
        try:
            container.start()
        except errors.KranError as exc:
            raise _start_failed(error_line(exc)) from None
        click.echo(container.id)
        return
    code = run_attached(container, options)
    sys.exit(code)


@click.command("create", cls=DockerCommand, context_settings=CONTEXT,
               short_help="Create a new container.")
@container_options
@pass_session
def create(session: Session, **options: Any) -> None:
    """Create a new container."""
    container = create_container(session, options, "create", 1)
    click.echo(container.id)


COMMANDS = (run, create)
