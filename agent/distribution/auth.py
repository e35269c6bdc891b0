"""Registry authentication: WWW-Authenticate challenges, credentials and bearer tokens.

A registry answers 401 with a challenge: `Basic realm="..."`, or
`Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
For Basic the client resends with the credentials; for Bearer it asks the
realm for a token for the scopes it needs (with Basic credentials, or an
identity token through OAuth2's refresh-token grant) and resends with
`Authorization: Bearer <token>`. Tokens are kept per scope set until they
expire or a registry refuses them.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field
from typing import Any

from agent.distribution.registries import registry_of
from kran import errors

DEFAULT_TOKEN_SECONDS = 60   # the token spec's default expires_in
_EXPIRY_MARGIN = 5.0         # refresh a token this long before it expires
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a WWW-Authenticate header: scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def _skip(text: str, pos: int, chars: str = " \t") -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The quoted string starting at text[pos] == '"', unescaped; and the position after it."""
    out, pos = [], pos + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise ValueError("unterminated quoted string")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate header (RFC 7235) into its challenges; malformed parts are dropped.

    >>> parse_challenges('Bearer realm="https://a/token",service="reg"')
    [Challenge(scheme='bearer', params={'realm': 'https://a/token', 'service': 'reg'})]
    """
    challenges: list[Challenge] = []
    pos = 0
    try:
        while True:
            pos = _skip(header, pos, " \t,")
            match = _TOKEN.match(header, pos)
            if match is None:
                return challenges
            current = Challenge(match.group().lower())
            challenges.append(current)
            pos = match.end()
            while True:
                pos = _skip(header, pos, " \t,")
                name = _TOKEN.match(header, pos)
                if name is None:
                    break
                after = _skip(header, name.end())
                if after >= len(header) or header[after] != "=":
                    break  # a bare token: the next challenge's scheme
                after = _skip(header, after + 1)
                if after < len(header) and header[after] == '"':
                    value, pos = _quoted(header, after)
                else:
                    token = _TOKEN.match(header, after)
                    value, pos = (token.group(), token.end()) if token else ("", after)
                current.params[name.group().lower()] = value
    except ValueError:
        return challenges


@dataclass(frozen=True)
class Credentials:
    """What a caller handed over for one call (kran.api.v1.RegistryAuth); never stored."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    server: str = ""           # the registry they are for (normalised domain), "" for any

    @classmethod
    def from_message(cls, auth: Any) -> Credentials:
        """From a RegistryAuth message (or None)."""
        if auth is None:
            return cls()
        server = registry_of(auth.server_address) if auth.server_address else ""
        return cls(auth.username, auth.password, auth.identity_token, server)

    def for_registry(self, domain: str) -> Credentials:
        """These credentials if they are meant for `domain`, else none: never hand them to another registry."""
        if self.server and self.server != registry_of(domain):
            return Credentials()
        return self

    def __bool__(self) -> bool:
        return bool(self.username or self.identity_token)

    def basic(self) -> str:
        """The value of a Basic Authorization header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def __repr__(self) -> str:  # never show a secret in a log or traceback
        return f"Credentials(username={self.username!r})"


def token_from_response(doc: Any) -> tuple[str, float]:
    """(token, lifetime in seconds) from a token server's JSON answer.

    Accepts `token` or OAuth2's `access_token`; `expires_in` defaults to 60 s.
    """
    if not isinstance(doc, dict):
        raise errors.PermissionDenied("the registry's token server answered something that is not a token")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise errors.PermissionDenied("the registry's token server answered no token")
    expires = doc.get("expires_in")
    lifetime = float(expires) if isinstance(expires, (int, float)) and expires > 0 else DEFAULT_TOKEN_SECONDS
    return token, lifetime


class TokenCache:
    """Bearer tokens by scope set, kept until shortly before they expire."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    def get(self, scopes: tuple[str, ...]) -> str | None:
        """A live token for exactly these scopes, or None."""
        entry = self._tokens.get(scopes)
        if entry is None or entry[1] - _EXPIRY_MARGIN <= self._clock():
            return None
        return entry[0]

    def put(self, scopes: tuple[str, ...], token: str, lifetime: float) -> None:
        """Keep `token` for `scopes` for `lifetime` seconds."""
        self._tokens[scopes] = (token, self._clock() + lifetime)

    def drop(self, scopes: tuple[str, ...]) -> None:
        """Forget the token for `scopes` (a registry refused it)."""
        self._tokens.pop(scopes, None)


def pull_scope(repository: str) -> str:
    """The token scope for pulling `repository` (path inside the registry)."""
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    """The token scope for pushing to `repository`."""
    return f"repository:{repository}:pull,push"


CATALOG_SCOPE = "registry:catalog:*"
