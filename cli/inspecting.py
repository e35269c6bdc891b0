"""What `image inspect` and `node inspect` share: JSON arrays, --format, errors."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from cli.gotemplate import Template, TemplateError
from cli.output import json_dump
from cli.session import error_line
from kran import errors
from kran.client import ConnectionFailed


def parse_format(fmt: str) -> Template:
    """The --format template, or InvalidArgument naming what is wrong with it."""
    try:
        return Template(fmt)
    except TemplateError as exc:
        raise errors.InvalidArgument(f"template parsing error: {exc}") from None


def render_each(values: Iterable[dict[str, Any]], fmt: str | None) -> str:
    """Inspect output: a JSON array, or the format rendered once per value."""
    values = list(values)
    if not fmt:
        return json_dump(values) + "\n"
    template = parse_format(fmt)
    try:
        return "".join(template.render(v) + "\n" for v in values)
    except TemplateError as exc:
        raise errors.InvalidArgument(f"template: {exc}") from None


def inspect_all(getter: Callable[[str], Any], names: Sequence[str], fmt: str | None,
                pretty: Callable[[dict[str, Any]], str] | None = None) -> None:
    """Inspect every name and print what was found, then the errors (exit 1), as docker."""
    if fmt:
        parse_format(fmt)
    found, failures = [], []
    for name in names:
        try:
            found.append(getter(name).attrs)
        except errors.KranError as exc:
            if isinstance(exc, ConnectionFailed):
                raise
            failures.append(exc)
    if fmt and found:
        click.echo(render_each(found, fmt), nl=False)
    elif pretty is not None and not fmt:
        click.echo("\n".join(pretty(attrs) for attrs in found), nl=False)
    elif not fmt:
        click.echo(render_each(found, None), nl=False)
    for exc in failures:
        click.echo(error_line(exc), err=True)
    if failures:
        sys.exit(1)
