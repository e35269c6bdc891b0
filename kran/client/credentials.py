"""Registry credentials, kept per user the way the docker CLI keeps them.

The file is Docker's `config.json` shape,

    {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"}}}

at `~/.kran/config.json` (the directory is `$KRAN_CONFIG` when set). It is
written whole to a temporary file of mode 0600 and renamed into place, so a
reader never sees half a file and the secret is never readable by others,
not even for a moment. Keys other than "auths" are kept as they were.
Nothing here logs or prints a password; `Credentials` hides it in repr().
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kran import errors
from kran.reference import DEFAULT_DOMAIN

CONFIG_ENV = "KRAN_CONFIG"
CONFIG_FILE = "config.json"
# Docker Hub goes by several names; they share one entry, as with docker.
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io",
                          "registry.hub.docker.com"})


@dataclass(frozen=True)
class Credentials:
    """What is kept for one registry: a user and password, or an identity token."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


def config_dir(environ: dict[str, str] | None = None) -> Path:
    """The directory of the user's config.json: $KRAN_CONFIG, else ~/.kran."""
    env = os.environ if environ is None else environ
    given = env.get(CONFIG_ENV)
    return Path(given) if given else Path.home() / ".kran"


def server_key(server: str | None) -> str:
    """The entry a registry is kept under: "host[:port]", Docker Hub as "docker.io".

    Accepts what users type to docker login: "127.0.0.1:5000",
    "https://reg.example.com/v2/", "index.docker.io"; empty means Docker Hub.
    """
    text = (server or "").strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    host = text.split("/", 1)[0].lower()
    if not host or host in _HUB_ALIASES:
        return DEFAULT_DOMAIN
    return host


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in a config.json ({} when there is none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise errors.FailedPrecondition(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidArgument(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise errors.InvalidArgument(f"{path}: expected a JSON object")
    return config


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Replace a JSON config file (config.json, a context) with config: mode 0600 from the start, renamed into place."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp makes the file 0600 from the start; the rename is atomic.
    fd, temp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(config, out, indent="\t")
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


class CredentialStore:
    """The `auths` of one config.json: get, store and erase credentials per registry.

    remember() keeps credentials for this process only (docker-py's
    `client.login`); they come before the file's in get().
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else config_dir() / CONFIG_FILE
        self._remembered: dict[str, Credentials] = {}

    def __repr__(self) -> str:
        return f"<CredentialStore {self.path}>"

    def _read(self) -> dict[str, Any]:
        config = read_config(self.path)
        if not isinstance(config.get("auths", {}), dict):
            raise errors.InvalidArgument(
                f'{self.path}: expected an object with an "auths" object')
        return config

    def _write(self, config: dict[str, Any]) -> None:
        write_config(self.path, config)

    def servers(self) -> list[str]:
        """The registries that have credentials, as kept ("host:port", "docker.io")."""
        return sorted(self._read().get("auths", {}))

    def remember(self, server: str | None, credentials: Credentials) -> str:
        """Use credentials for a registry in this process, without writing them."""
        key = server_key(server)
        self._remembered[key] = credentials
        return key

    def get(self, server: str | None) -> Credentials | None:
        """The credentials for a registry, or None when there are none."""
        key = server_key(server)
        if key in self._remembered:
            return self._remembered[key]
        entry = self._read().get("auths", {}).get(key)
        if not isinstance(entry, dict):
            return None
        token = entry.get("identitytoken") or ""
        encoded = entry.get("auth") or ""
        if not encoded:
            return Credentials(identity_token=token) if token else None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise errors.InvalidArgument(
                f"{self.path}: the credentials for {key} are not valid base64 of "
                "user:password; run 'kran login' again") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise errors.InvalidArgument(
                f"{self.path}: the credentials for {key} are not user:password; "
                "run 'kran login' again")
        return Credentials(username=username, password=password, identity_token=token)

    def store(self, server: str | None, credentials: Credentials) -> str:
        """Keep credentials for a registry (replacing any); returns the entry's key."""
        key = server_key(server)
        config = self._read()
        entry: dict[str, str] = {}
        if credentials.username or credentials.password:
            pair = f"{credentials.username}:{credentials.password}".encode()
            entry["auth"] = base64.b64encode(pair).decode()
        if credentials.identity_token:
            entry["identitytoken"] = credentials.identity_token
        config.setdefault("auths", {})[key] = entry
        self._write(config)
        return key

    def erase(self, server: str | None) -> bool:
        """Forget a registry's credentials; False when there were none."""
        key = server_key(server)
        forgotten = self._remembered.pop(key, None) is not None
        config = self._read()
        if key not in config.get("auths", {}):
            return forgotten
        del config["auths"][key]
        self._write(config)
        return True
