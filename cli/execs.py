"""`kran exec` and `kran attach`: a terminal joined to a container's process."""

from __future__ import annotations

import sys

import click

from cli import streams
from cli.flags import DockerCommand, StatusError, start_error_status
from cli.run import CONTEXT, DEFAULT_DETACH_KEYS, env_flag, read_env_file, signal_forwarder
from cli.session import Session, error_line, pass_session
from kran import errors
from kran.client import Container

# What docker prints, and its exit status, when attach or exec is detached.
DETACHED_MESSAGE = "read escape sequence"


def _not_running(container: Container) -> None:
    """docker attach refuses stopped and paused containers before attaching."""
    state = container.attrs["State"]
    if state["Status"] in ("exited", "created", "dead"):
        raise errors.FailedPrecondition("You cannot attach to a stopped container, start it first")
    if state["Paused"]:
        raise errors.FailedPrecondition("You cannot attach to a paused container, unpause it first")
    if state["Restarting"]:
        raise errors.FailedPrecondition(
            "You cannot attach to a restarting container, wait until it is running")


@click.command("attach", cls=DockerCommand)
@click.argument("container")
@click.option("--detach-keys", default=DEFAULT_DETACH_KEYS,
              help="Override the key sequence for detaching a container.")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.option("--sig-proxy/--no-sig-proxy", default=True,
              help="Proxy all received signals to the process.")
@pass_session
def attach(session: Session, container: str, detach_keys: str, no_stdin: bool,
           sig_proxy: bool) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    target = session.client.containers.get(container)
    _not_running(target)
    config = target.attrs["Config"]
    tty = config["Tty"]
    if tty and not no_stdin and not streams.stdin_is_terminal():
        raise StatusError("the input device is not a TTY", 1)
    stdin = not no_stdin and config["OpenStdin"]
    stream = target.attach_socket(stdin=stdin, stdout=True, stderr=True,
                                  detach_keys=detach_keys)
    streams.stream(stream, stdin=stdin, tty=tty,
                   proxy=signal_forwarder(target) if sig_proxy else None, nudge=True)
    if stream.detached:
        raise StatusError(DETACHED_MESSAGE, 1)
    if stream.error:
        raise StatusError(stream.error, stream.exit_code or 1)
    code = stream.exit_code
    if code is None:
        code = target.wait()["StatusCode"]
    sys.exit(code)


@click.command("exec", cls=DockerCommand, context_settings=CONTEXT)
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background.")
@click.option("--detach-keys", default=DEFAULT_DETACH_KEYS,
              help="Override the key sequence for detaching a container.")
@click.option("-e", "--env", multiple=True, metavar="LIST", help="Set environment variables.")
@click.option("--env-file", multiple=True, metavar="LIST",
              help="Read in a file of environment variables.")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached.")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-u", "--user", default="",
              help="Username or UID (format: <name|uid>[:<group|gid>]).")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@pass_session
def exec_(session: Session, container: str, command: tuple[str, ...], detach: bool,
          detach_keys: str, env: tuple[str, ...], env_file: tuple[str, ...], interactive: bool,
          privileged: bool, tty: bool, user: str, workdir: str | None) -> None:
    """Execute a command in a running container."""
    environment = []
    for path in env_file:
        environment += read_env_file(path)
    environment += [env_flag(e) for e in env]
    target = Container({"Id": container}, session.client, session.client.containers)
    # As docker: a missing container is reported before a terminal problem.
    target.reload()
    if not detach and tty and interactive and not streams.stdin_is_terminal():
        raise StatusError("the input device is not a TTY", 1)
    size = streams.terminal_size() if tty else None
    stream = target.exec_socket(list(command), stdin=interactive and not detach, tty=tty,
                                privileged=privileged, user=user, detach=detach,
                                environment=environment, workdir=workdir,
                                detach_keys=detach_keys, size=size)
    if detach:
        for _ in stream:
            pass
        return
    streams.stream(stream, stdin=interactive, tty=tty)
    if stream.detached:
        raise StatusError(DETACHED_MESSAGE, 1)
    if stream.error:
        line = error_line(errors.KranError(stream.error))
        raise StatusError(line, stream.exit_code or start_error_status(stream.error))
    sys.exit(stream.exit_code if stream.exit_code is not None else 1)


COMMANDS = (attach, exec_)
