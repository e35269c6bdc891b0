"""What pull, push, login and search share in the SDK: which registry a call
is for, the credentials that go with it, and docker's progress dicts.

Credentials travel with each call as a `RegistryAuth` (agents never keep
them): those given to the call, else those of `client.login()` in this
process, else those kept in the user's config.json for that registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kran import errors, reference
from kran.client.credentials import CredentialStore, Credentials, server_key

if TYPE_CHECKING:
    from kran.api.v1 import images_pb2

# docker-py's auth_config keys (and the X-Registry-Auth JSON's) to ours.
_AUTH_KEYS = {"username": "username", "password": "password",
              "identitytoken": "identity_token", "identity_token": "identity_token"}


class RegistryError(errors.KranError):
    """A pull or push that the node reported as failed in its progress stream."""


def pull_reference(repository: str, tag: str | None = None,
                   all_tags: bool = False) -> reference.Reference:
    """The reference a pull asks for; a tag with all_tags is refused, as docker does.

    `repository` may carry its own tag or digest; `tag` replaces the tag.
    Without either, the tag is "latest" (no tag at all with all_tags).
    """
    ref = reference.parse(repository, default_tag=False)
    if tag:
        ref = ref.with_digest(tag) if tag.startswith("sha256:") else ref.with_tag(tag)
    if all_tags:
        if ref.tag or ref.digest:
            raise errors.InvalidArgument("tag can't be used with --all-tags/-a")
        return ref
    if not ref.tag and not ref.digest:
        ref = ref.with_tag(reference.DEFAULT_TAG)
    return ref


def push_reference(repository: str, tag: str | None = None,
                   all_tags: bool = False) -> reference.Reference:
    """The reference a push sends: as pull_reference, but a digest cannot be pushed."""
    ref = pull_reference(repository, tag, all_tags)
    if ref.digest:
        raise errors.InvalidArgument(
            f"cannot push a digest reference: {repository}; push a tag instead")
    return ref


def search_registry(term: str) -> str:
    """The registry a search term names ("127.0.0.1:5000/busy"), else Docker Hub.

    As docker's splitReposSearchTerm: the first component is a registry when
    it has a '.' or a ':' or is "localhost".
    """
    first, sep, _ = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return server_key(first)
    return reference.DEFAULT_DOMAIN


def credentials_for(store: CredentialStore, server: str,
                    auth_config: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for a call to server: auth_config if given, else the store's."""
    if auth_config:
        unknown = set(auth_config) - set(_AUTH_KEYS) - {"serveraddress", "email"}
        if unknown:
            raise errors.InvalidArgument(
                f"auth_config takes username, password and identitytoken, not "
                f"{', '.join(sorted(unknown))}")
        return Credentials(**{_AUTH_KEYS[k]: str(v) for k, v in auth_config.items()
                              if k in _AUTH_KEYS})
    return store.get(server)


def auth_message(server: str, credentials: Credentials | None) -> images_pb2.RegistryAuth:
    """The RegistryAuth for a call to server (empty when there are no credentials)."""
    from kran.api.v1 import images_pb2  # noqa: PLC0415 - only calls that talk to a registry

    if credentials is None:
        return images_pb2.RegistryAuth()
    return images_pb2.RegistryAuth(username=credentials.username,
                                   password=credentials.password,
                                   server_address=server_key(server),
                                   identity_token=credentials.identity_token)


def progress_dict(message: images_pb2.Progress) -> dict[str, Any]:
    """A Progress message as a line of docker's JSON progress stream.

    {"status", "id", "progressDetail": {"current", "total"}} and, on a
    failure, {"error", "errorDetail": {"message"}}; "node" names the node
    the line comes from when the controller stamped it.
    """
    line: dict[str, Any] = {"status": message.status}
    if message.id:
        line["id"] = message.id
    if message.current or message.total:
        line["progressDetail"] = {"current": message.current, "total": message.total}
    if message.node_name:
        line["node"] = message.node_name
    if message.error:
        line["error"] = message.error
        line["errorDetail"] = {"message": message.error}
    return line


def raise_on_error(lines: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consume a progress stream; RegistryError with the node's message if it failed."""
    seen = []
    for line in lines:
        if "error" in line:
            raise RegistryError(line["error"])
        seen.append(line)
    return seen
