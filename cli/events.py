"""`kran events`, as `docker events` prints them.

    2026-11-25T10:00:00.000000000Z container start 3f2a... (image=busybox, name=x)

Ctrl-C ends the stream quietly with status 130 (128 + SIGINT), as the docker
CLI exits on a signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from cli.flags import CheckedType, DockerCommand
from cli.gotemplate import TemplateError
from cli.inspecting import parse_format
from cli.session import Session, pass_session
from kran import errors
from kran.client.events import timestamp_nanos

INTERRUPTED = 130


def parse_filter(text: str) -> tuple[str, str]:
    """"key=value" of --filter; InvalidArgument as docker words it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise errors.InvalidArgument("bad format of filter (expected name=value)")
    return key.strip().lower(), value


def filters_of(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """--filter pairs grouped by key."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


def event_time(nanos: int, tz: Any = None) -> str:
    """Go's RFC3339NanoFixed in local time (or tz): "2026-11-25T10:00:00.000000000Z"."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc).astimezone(tz)
    offset = moment.utcoffset() or timedelta(0)
    zone = "Z" if not offset else moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}" + zone


def event_line(attrs: Mapping[str, Any], tz: Any = None) -> str:
    """One event as docker prints it: time, type, action, actor id, (attributes by key)."""
    actor = attrs["Actor"]
    line = f"{event_time(attrs['timeNano'], tz)} {attrs['Type']} {attrs['Action']} {actor['ID']}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line


def _checked_time(flag: str, value: str | None) -> str | None:
    if value:
        try:
            timestamp_nanos(value)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"invalid value for {flag}: {exc}") from None
    return value


@click.command("events", cls=DockerCommand)
@click.option("--since", metavar="STRING", help="Show all events created since timestamp")
@click.option("--until", metavar="STRING", help="Stream events until this timestamp")
@click.option("-f", "--filter", "filters", metavar="FILTER", multiple=True,
              type=CheckedType("filter", parse_filter),
              help="Filter output based on conditions provided")
@click.option("--format", "fmt", metavar="STRING",
              help="Format output using a custom template: 'json' or a Go template")
@pass_session
@click.pass_context
def events(ctx: click.Context, session: Session, since: str | None, until: str | None,
           filters: tuple[tuple[str, str], ...], fmt: str | None) -> None:
    """Get real time events from the cluster."""
    template = parse_format("{{json .}}" if fmt == "json" else fmt) if fmt else None
    request = {"since": _checked_time("--since", since), "until": _checked_time("--until", until),
               "filters": filters_of(filters)}
    stream = None
    try:
        stream = session.client.events(**request, decode=True)
        for attrs in stream:
            if template is None:
                click.echo(event_line(attrs))
                continue
            try:
                click.echo(template.render(attrs))
            except TemplateError as exc:
                raise errors.InvalidArgument(f"template: {exc}") from None
    except KeyboardInterrupt:
        if stream is not None:
            stream.close()
        ctx.exit(INTERRUPTED)
