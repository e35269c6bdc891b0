"""Contexts: named clusters to talk to, kept per user as the docker CLI keeps them.

A context names the endpoints of a cluster's controllers. They live beside
the registry credentials (the directory of `config.json`, see
kran/client/credentials.py):

    contexts/<name>.json   {"Name", "Metadata": {"Description"}, "Endpoints": {"kran": {"Host"}}}
    config.json            {"currentContext": "<name>", "auths": {...}, ...}

Both are written whole, mode 0600, and renamed into place; whatever else
config.json holds is kept. The context "default" always exists: KRAN_HOST,
or 127.0.0.1:7640. Which endpoints a client uses follows docker's order:
an explicit host (-H), else an explicit context (--context), else
KRAN_HOST, else KRAN_CONTEXT, else config.json's currentContext, else
"default".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kran import errors
from kran.client.credentials import CONFIG_FILE, config_dir, read_config, write_config
from kran.defaults import CONTEXT_ENV, DEFAULT_HOST, HOST_ENV

DEFAULT_CONTEXT = "default"
CURRENT_KEY = "currentContext"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$")


@dataclass(frozen=True)
class Context:
    """One context: a name, the controllers' endpoints ("a:7640,b:7640") and a description.

    error says why a stored context could not be read (it is then listed but not usable).
    """

    name: str
    host: str
    description: str = ""
    path: Path | None = None
    error: str = ""

    @property
    def attrs(self) -> dict[str, Any]:
        """The context as `docker context inspect` shapes it."""
        return {
            "Name": self.name,
            "Metadata": {"Description": self.description},
            "Endpoints": {"kran": {"Host": self.host}},
            "Storage": {"MetadataPath": str(self.path) if self.path else "<IN MEMORY>"},
        }


def validate_name(name: str) -> str:
    """name, or errors.InvalidArgument as docker words it."""
    if name == DEFAULT_CONTEXT:
        raise errors.InvalidArgument(f'"{DEFAULT_CONTEXT}" is a reserved context name')
    if not _NAME.match(name):
        raise errors.InvalidArgument(
            f'context name "{name}" is invalid, names are validated against regexp '
            f'"{_NAME.pattern}"')
    return name


def _hosts(host: str | Sequence[str]) -> str:
    from kran.client.api import parse_hosts  # noqa: PLC0415 - grpc only where a host is checked
    return ",".join(parse_hosts(host))


class ContextStore:
    """The contexts of one user (directory: $KRAN_CONFIG, else ~/.kran)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None,
                 environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.directory = Path(directory) if directory is not None else config_dir(dict(self.environ))

    def __repr__(self) -> str:
        return f"<ContextStore {self.directory}>"

    @property
    def _config(self) -> Path:
        return self.directory / CONFIG_FILE

    def _path(self, name: str) -> Path:
        return self.directory / "contexts" / f"{name}.json"

    def default(self) -> Context:
        """The "default" context: KRAN_HOST, else 127.0.0.1:7640."""
        return Context(DEFAULT_CONTEXT, self.environ.get(HOST_ENV) or DEFAULT_HOST,
                       f"Current {HOST_ENV} based configuration")

    def _load(self, name: str, path: Path) -> Context:
        try:
            data = read_config(path)
            host = data["Endpoints"]["kran"]["Host"]
            description = (data.get("Metadata") or {}).get("Description", "")
            if not isinstance(host, str) or not isinstance(description, str):
                raise TypeError("Host and Description must be strings")
        except (errors.KranError, KeyError, TypeError) as exc:
            return Context(name, "", path=path, error=f"cannot read {path}: {exc}")
        return Context(name, host, description, path)

    def get(self, name: str) -> Context:
        """The context called name; errors.NotFound if there is none."""
        if name == DEFAULT_CONTEXT:
            return self.default()
        path = self._path(name)
        if not _NAME.match(name) or not path.is_file():
            raise errors.NotFound(f'context "{name}" does not exist')
        return self._load(name, path)

    def list(self) -> list[Context]:
        """"default", then the stored contexts by name."""
        folder = self.directory / "contexts"
        stored = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return [self.default(), *(self._load(path.stem, path) for path in stored
                                  if _NAME.match(path.stem))]

    def create(self, name: str, host: str | Sequence[str], description: str = "") -> Context:
        """Keep a new context; errors.AlreadyExists if the name is taken."""
        validate_name(name)
        path = self._path(name)
        if path.exists():
            raise errors.AlreadyExists(f'context "{name}" already exists')
        context = Context(name, _hosts(host), description, path)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_config(path, {"Name": name, "Metadata": {"Description": description},
                            "Endpoints": {"kran": {"Host": context.host}}})
        return context

    def remove(self, name: str) -> None:
        """Forget a context; the current one becomes "default" again. "default" cannot go."""
        if name == DEFAULT_CONTEXT:
            raise errors.FailedPrecondition(f'context "{DEFAULT_CONTEXT}" cannot be removed')
        self.get(name)
        if self.current_name() == name:
            self.use(DEFAULT_CONTEXT)
        self._path(name).unlink()

    def current_name(self) -> str:
        """The context config.json names as current ("default" when none)."""
        return read_config(self._config).get(CURRENT_KEY) or DEFAULT_CONTEXT

    def use(self, name: str) -> Context:
        """Make name the current context (kept in config.json)."""
        context = self.get(name)
        config = read_config(self._config)
        if name == DEFAULT_CONTEXT:
            if CURRENT_KEY not in config:
                return context
            del config[CURRENT_KEY]
        else:
            config[CURRENT_KEY] = name
        write_config(self._config, config)
        return context

    def name_in_effect(self, host: str | Sequence[str] | None = None,
                       context: str | None = None) -> str:
        """The name of the context a client uses, given the explicit -H and --context.

        Giving both is errors.InvalidArgument, as with docker.
        """
        if host and context:
            raise errors.InvalidArgument(
                "conflicting options: either specify --host or --context, not both")
        if host:
            return DEFAULT_CONTEXT
        if context:
            return context
        if self.environ.get(HOST_ENV):
            return DEFAULT_CONTEXT
        return self.environ.get(CONTEXT_ENV) or self.current_name()

    def in_effect(self, host: str | Sequence[str] | None = None,
                  context: str | None = None) -> tuple[str | Sequence[str], str]:
        """The endpoints a client uses and the name of the context they come from."""
        name = self.name_in_effect(host, context)
        if host:
            return host, name
        found = self.get(name)
        if found.error:
            raise errors.FailedPrecondition(found.error)
        return found.host, name
