"""What every command shares: the session (where the cluster is, the client) and error lines."""

from __future__ import annotations

import click

from kran import errors
from kran.client import Client, ContextStore, server_said


def error_line(exc: errors.KranError) -> str:
    """The one line docker prints for an error.

    A server's answer is prefixed "Error response from daemon:"; a refusal
    made on this side (a bad argument, an unreachable controller) is not.
    """
    if server_said(exc):
        return f"Error response from daemon: {exc}"
    return str(exc)


class Session:
    """What -H and --context said and, once a command needs it, a client.

    The controllers are found as docker finds its daemon (see
    kran/client/contexts.py): -H, else --context, else KRAN_HOST, else
    KRAN_CONTEXT, else the current context, else 127.0.0.1:7640.
    """

    def __init__(self, host: str | None, context: str | None = None):
        self.host = host
        self.context = context
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The SDK client, made on first use."""
        if self._client is None:
            host, _ = ContextStore().in_effect(self.host, self.context)
            self._client = Client(host)
        return self._client

    def close(self) -> None:
        """Close the client's connection, if one was made."""
        if self._client is not None:
            self._client.close()


pass_session = click.make_pass_decorator(Session)

node_option = click.option(
    "--node", metavar="NODE", default=None,
    help="Node to use (id, id prefix or hostname); default: the whole cluster.")
