"""What every command shares: the session (address, client) and error lines."""

from __future__ import annotations

import click

from kran import errors
from kran.client import Client, server_said


def error_line(exc: errors.KranError) -> str:
    """The one line docker prints for an error.

    A server's answer is prefixed "Error response from daemon:"; a refusal
    made on this side (a bad argument, an unreachable controller) is not.
    """
    if server_said(exc):
        return f"Error response from daemon: {exc}"
    return str(exc)


class Session:
    """The controller address and, once a command needs it, a client."""

    def __init__(self, host: str | None):
        self.host = host
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The SDK client, made on first use."""
        if self._client is None:
            self._client = Client(self.host)
        return self._client

    def close(self) -> None:
        """Close the client's connection, if one was made."""
        if self._client is not None:
            self._client.close()


pass_session = click.make_pass_decorator(Session)

node_option = click.option(
    "--node", metavar="NODE", default=None,
    help="Node to use (id, id prefix or hostname); default: the whole cluster.")
