"""`kran logs`: a container's log, with docker's --since/--until forms."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import click

from cli.flags import CheckedType, DockerCommand
from cli.session import Session, pass_session
from cli.streams import STDERR, STDOUT, write_all
from kran import errors
from kran.client import Container

# Go's time.ParseDuration: a sequence of decimal numbers, each with a unit.
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}
# The date and time layouts docker's GetTimestamp accepts (a zone, or local time).
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?)?"
    r"(Z|z|[+-]\d{2}:\d{2})?$")
_UNIX = re.compile(r"^\d+(?:\.\d{1,9})?$")


def go_duration(text: str) -> float | None:
    """Seconds of a Go duration ("10m", "1h30m", "1.5s", "-2h"), None if text is not one."""
    sign = 1.0
    body = text
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if not body:
        return None
    total, pos = 0.0, 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def parse_time(value: str, now: float | None = None) -> float:
    """docker's --since/--until: a duration before now, a date/time, or unix seconds.

    Returns unix seconds. Times without a zone are local, as docker reads them.
    """
    now = time.time() if now is None else now
    value = value.strip()
    if value != "0":
        duration = go_duration(value)
        if duration is not None:
            return now - duration
    match = _DATETIME.match(value)
    if match:
        year, month, day, hour, minute, second, frac, zone = match.groups()
        try:
            moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                              int(second or 0))
        except ValueError:
            raise errors.InvalidArgument(
                f'failed to parse value as time or duration: "{value}"') from None
        if zone in ("Z", "z"):
            moment = moment.replace(tzinfo=timezone.utc)
        elif zone:
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            moment = moment.replace(tzinfo=timezone(offset if zone[0] == "+" else -offset))
        return moment.timestamp() + float(frac or 0)
    if _UNIX.match(value):
        return float(value)
    raise errors.InvalidArgument(f'failed to parse value as time or duration: "{value}"')


def show_logs(container: Container, *, follow: bool, tail: str, since: float | None,
              until: float | None, timestamps: bool) -> None:
    """Write the log to our stdout and stderr, each record to its stream."""
    for line in container.log_lines(follow=follow, tail=tail, since=since, until=until):
        data = f"{line.time} ".encode() + line.data if timestamps else line.data
        write_all(STDERR if line.stream == "stderr" else STDOUT, data)


def _tail(value: str) -> str:
    if value == "all":
        return value
    try:
        int(value)
    except ValueError:
        raise errors.InvalidArgument(f"invalid tail value: {value}") from None
    return value


@click.command("logs", cls=DockerCommand)
@click.argument("container")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("--since", type=CheckedType("time", parse_time),
              help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative '
                   '(e.g. "42m" for 42 minutes).')
@click.option("--until", type=CheckedType("time", parse_time),
              help="Show logs before a timestamp or relative time.")
@click.option("-n", "--tail", default="all", type=CheckedType("lines", _tail),
              help='Number of lines to show from the end of the logs (default "all").')
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@pass_session
def logs(session: Session, container: str, follow: bool, since: float | None,
         until: float | None, tail: str, timestamps: bool) -> None:
    """Fetch the logs of a container."""
    target = Container({"Id": container}, session.client, session.client.containers)
    show_logs(target, follow=follow, tail=tail, since=since, until=until, timestamps=timestamps)


COMMANDS = (logs,)
