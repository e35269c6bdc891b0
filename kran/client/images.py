"""Images: the cluster's images, as docker-py's `client.images` shows them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from kran import errors, imageinspect
from kran.reference import parse_tagged
from kran.api.v1 import images_pb2
from kran.client import registry
from kran.client.api import chunked
from kran.client.credentials import Credentials, server_key
from kran.client.models import Collection, PlacedModel


def _removed(items: Iterable[images_pb2.RemovedImage]) -> list[dict[str, str]]:
    """RemovedImage messages as Docker's [{"Untagged": ...}, {"Deleted": ...}]."""
    out = []
    for item in items:
        if item.WhichOneof("what") == "untagged":
            out.append({"Untagged": item.untagged})
        elif item.WhichOneof("what") == "deleted":
            out.append({"Deleted": item.deleted})
    return out


def _filters(filters: Mapping[str, Any] | None, name: str | None) -> dict[str, str]:
    """Docker-style filters as the flat map the API takes (one value per key)."""
    flat: dict[str, str] = {}
    for key, value in (filters or {}).items():
        if isinstance(value, (list, tuple, set)):
            values = sorted({_filter_value(v) for v in value})
            if len(values) > 1:
                raise errors.InvalidArgument(
                    f"filter {key!r} takes one value, got {len(values)}")
            if not values:
                continue
            value = values[0]
        flat[key] = _filter_value(value)
    if name:
        if flat.get("reference", name) != name:
            raise errors.InvalidArgument(
                "a repository argument and a reference filter cannot both be given")
        flat["reference"] = name
    return flat


def _check_target(text: str) -> None:
    """Refuse, before any call, a reference that cannot name an image (as docker's client)."""
    try:
        parse_tagged(text)
    except errors.InvalidArgument as exc:
        raise errors.InvalidArgument(
            f'Error parsing reference: "{text}" is not a valid repository/tag: {exc}') from None


def _filter_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Image(PlacedModel):
    """An image on one node.

    `attrs` is shaped like `GET /images/json` for images from `list()` and
    like `docker image inspect` for images from `get()` (call `reload()`).
    """

    def __init__(self, attrs: dict[str, Any], client: Any, collection: Collection,
                 message: images_pb2.Image | None = None,
                 detail: images_pb2.ImageDetail | None = None):
        super().__init__(attrs, client, collection)
        self.message = message if message is not None else images_pb2.Image()
        self.detail = detail

    @property
    def short_id(self) -> str:
        """`sha256:` and the first 12 hex digits, as docker-py shows it."""
        if self.id.startswith("sha256:"):
            return self.id[:19]
        return self.id[:12]

    @property
    def tags(self) -> list[str]:
        """The image's repository tags, `<none>:<none>` left out."""
        return [t for t in self.attrs.get("RepoTags") or [] if t != "<none>:<none>"]

    @property
    def labels(self) -> dict[str, str]:
        """The image's labels."""
        if "Config" in self.attrs:
            return dict((self.attrs["Config"] or {}).get("Labels") or {})
        return dict(self.attrs.get("Labels") or {})

    def reload(self) -> None:
        """Fetch the image again (inspect-shaped attrs) from the same node."""
        fresh = self.collection.get(self.id, node=self.node_id or None)
        self.attrs, self.message, self.detail = fresh.attrs, fresh.message, fresh.detail

    def history(self) -> list[dict[str, Any]]:
        """Docker's history entries for the image, newest first."""
        if self.detail is None:
            self.reload()
        return imageinspect.history(self.detail)

    def tag(self, repository: str, tag: str | None = None) -> bool:
        """Tag the image as repository[:tag] on its node. Returns True."""
        target = f"{repository}:{tag}" if tag else repository
        self.collection.tag(self.id, target, node=self.node_id or None)
        return True

    def save(self) -> Iterator[bytes]:
        """The image as a docker-save/OCI tarball, in chunks."""
        return self.collection.save_stream([self.id], node=self.node_id or None)


class ImageCollection(Collection):
    """The images of every Ready node (or of one node, with `node=`)."""

    model = Image

    def _model(self, message: images_pb2.Image) -> Image:
        return Image(imageinspect.summary(message), self.client, self, message=message)

    def list(self, name: str | None = None, all: bool = False,
             filters: Mapping[str, Any] | None = None, node: str | None = None) -> list[Image]:
        """Images, one per node that holds them.

        name: a `repository[:tag]` pattern (Docker's reference filter).
        filters: dangling=True|False, reference=PATTERN, label=KEY[=VALUE].
        """
        request = images_pb2.ListImagesRequest(all=all, node=node or "",
                                               filters=_filters(filters, name))
        response = self.client.api.call(self.client.api.images.List, request)
        return [self._model(m) for m in response.images]

    def get(self, name: str, node: str | None = None) -> Image:
        """The image for a reference, id or unique id prefix (inspect-shaped attrs)."""
        request = images_pb2.InspectImageRequest(reference=name, node=node or "")
        detail = self.client.api.call(self.client.api.images.Inspect, request)
        return Image(imageinspect.inspect(detail), self.client, self,
                     message=detail.image, detail=detail)

    def import_image(self, source: str | os.PathLike | IO[bytes], reference: str | None = None,
                     changes: Iterable[str] = (), message: str = "", node: str | None = None,
                     platform: str = "") -> Image:
        """Make a one-layer image from a rootfs tarball (docker import).

        source: a path or a binary file object; changes: Dockerfile lines
        (CMD, ENV, ...); message: the history comment.
        """
        if reference:
            _check_target(reference)
        header = images_pb2.ImportHeader(reference=reference or "", node=node or "",
                                         changes=list(changes), message=message,
                                         platform=platform)
        with _opened(source) as fileobj:
            requests = chunked(images_pb2.ImportImageRequest(header=header), fileobj,
                               lambda data: images_pb2.ImportImageRequest(chunk=data))
            response = self.client.api.call(self.client.api.images.Import, requests)
        return self._model(response.image)

    def load(self, data: str | os.PathLike | IO[bytes],
             node: str | None = None) -> tuple[list[Image], list[str]]:
        """Load a docker-save or OCI layout tarball.

        Returns the loaded images and docker load's lines ("Loaded image: x").
        """
        header = images_pb2.LoadImagesRequest(header=images_pb2.LoadHeader(node=node or ""))
        with _opened(data) as fileobj:
            requests = chunked(header, fileobj,
                               lambda chunk: images_pb2.LoadImagesRequest(chunk=chunk))
            response = self.client.api.call(self.client.api.images.Load, requests)
        return [self._model(m) for m in response.images], list(response.messages)

    def save_stream(self, names: Iterable[str], node: str | None = None) -> Iterator[bytes]:
        """The images as one docker-save/OCI tarball, in chunks as they arrive."""
        request = images_pb2.SaveImagesRequest(references=list(names), node=node or "")
        for chunk in self.client.api.stream(self.client.api.images.Save, request):
            yield chunk.data

    def save(self, names: Iterable[str], out: IO[bytes], node: str | None = None) -> int:
        """Write the images as one tarball to out; returns the bytes written."""
        written = 0
        for data in self.save_stream(names, node=node):
            out.write(data)
            written += len(data)
        return written

    def tag(self, source: str, target: str, node: str | None = None) -> None:
        """Give the image `source` the reference `target` ([registry/]repo[:tag])."""
        _check_target(target)
        request = images_pb2.TagImageRequest(source=source, target=target, node=node or "")
        self.client.api.call(self.client.api.images.Tag, request)

    def remove(self, image: str, force: bool = False, noprune: bool = False,
               node: str | None = None) -> list[dict[str, str]]:
        """Untag or delete an image, as docker rmi; returns what was done."""
        request = images_pb2.RemoveImageRequest(reference=image, force=force,
                                                no_prune=noprune, node=node or "")
        response = self.client.api.call(self.client.api.images.Remove, request)
        return _removed(response.removed)

    def prune(self, all: bool = False, node: str | None = None) -> dict[str, Any]:
        """Remove dangling images (every unused image with all=True).

        Returns {"ImagesDeleted": [...], "SpaceReclaimed": bytes}.
        """
        request = images_pb2.PruneImagesRequest(all=all, node=node or "")
        response = self.client.api.call(self.client.api.images.Prune, request)
        return {"ImagesDeleted": _removed(response.removed) or None,
                "SpaceReclaimed": response.space_reclaimed}

    def pull_progress(self, repository: str, tag: str | None = None, all_tags: bool = False,
                      platform: str | None = None, node: str | None = None,
                      all_nodes: bool = False,
                      auth_config: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Pull from a registry, yielding docker's progress dicts as they come.

        A failure the node reports ends the stream with {"error": ...}; a
        refused call raises. Credentials: auth_config ({"username",
        "password"}), else those of `client.login()` or the user's
        config.json for the reference's registry. The reference is checked
        before anything is sent.
        """
        ref = registry.pull_reference(repository, tag, all_tags)
        request = images_pb2.PullImageRequest(
            reference=ref.full(), platform=platform or "", all_tags=all_tags,
            auth=self._auth(ref.domain, auth_config), node=node or "", all_nodes=all_nodes)
        for message in self.client.api.stream(self.client.api.images.Pull, request):
            yield registry.progress_dict(message)

    def pull(self, repository: str, tag: str | None = None, all_tags: bool = False,
             platform: str | None = None, node: str | None = None, all_nodes: bool = False,
             auth_config: Mapping[str, str] | None = None) -> Image | list[Image]:
        """Pull an image and return it (docker-py); all_tags returns the repository's images.

        Raises registry.RegistryError with the node's message when the pull fails.
        """
        registry.raise_on_error(self.pull_progress(repository, tag, all_tags, platform, node,
                                                   all_nodes, auth_config))
        ref = registry.pull_reference(repository, tag, all_tags)
        if all_tags:
            return self.list(name=ref.familiar_name(), node=node)
        return self.get(ref.familiar(), node=node)

    def push_progress(self, repository: str, tag: str | None = None, all_tags: bool = False,
                      node: str | None = None,
                      auth_config: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Push to a registry from the node that has the image, yielding progress dicts."""
        ref = registry.push_reference(repository, tag, all_tags)
        request = images_pb2.PushImageRequest(
            reference=ref.full(), all_tags=all_tags, auth=self._auth(ref.domain, auth_config),
            node=node or "")
        for message in self.client.api.stream(self.client.api.images.Push, request):
            yield registry.progress_dict(message)

    def push(self, repository: str, tag: str | None = None, all_tags: bool = False,
             node: str | None = None,
             auth_config: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Push and return the progress dicts; registry.RegistryError if it fails."""
        return registry.raise_on_error(
            self.push_progress(repository, tag, all_tags, node, auth_config))

    def search(self, term: str, limit: int | None = None,
               auth_config: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Repositories of a registry's catalog that match term (docker-py's shape).

        "127.0.0.1:5000/busy" searches that registry; a bare term, Docker Hub
        (its mirror).
        """
        if limit is not None and not 1 <= limit <= 100:
            raise errors.InvalidArgument(f"limit {limit} is outside the range of [1, 100]")
        server = registry.search_registry(term)
        request = images_pb2.SearchImagesRequest(term=term, limit=limit or 0,
                                                 auth=self._auth(server, auth_config))
        response = self.client.api.call(self.client.api.images.Search, request)
        return [{"name": r.name, "description": r.description, "star_count": r.star_count,
                 "is_official": r.is_official} for r in response.results]

    def login(self, username: str, password: str = "", registry_address: str | None = None,
              identity_token: str = "") -> dict[str, str]:
        """Check credentials with a registry (docker login); this client uses them afterwards.

        Nothing is written to disk (`client.credentials.store()` does that).
        Returns {"Status": "Login Succeeded", "IdentityToken": ...}.
        """
        server = server_key(registry_address)
        given = Credentials(username=username, password=password,
                                     identity_token=identity_token)
        request = images_pb2.LoginRequest(auth=registry.auth_message(server, given))
        response = self.client.api.call(self.client.api.images.Login, request)
        self.client.credentials.remember(server, Credentials(
            username=username, password=password,
            identity_token=response.identity_token or identity_token))
        return {"Status": response.status or "Login Succeeded",
                "IdentityToken": response.identity_token}

    def build_stream(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Build an image, yielding docker build's JSON stream dicts as they come.

        Takes build()'s arguments. A failed build ends with {"error": ...,
        "errorDetail": {"message", "code"}}; a build refused before it
        started raises the error kind.
        """
        from kran.client.build import build_stream  # noqa: PLC0415 - only builds need it
        return build_stream(self.client, **kwargs)

    def build(self, path: str | os.PathLike | None = None, fileobj: IO[bytes] | None = None,
              tag: str | Iterable[str] | None = None, nocache: bool = False, custom_context: bool = False,
              pull: bool = False, dockerfile: str | None = None, buildargs: Mapping[str, Any] | None = None,
              labels: Mapping[str, str] | None = None, target: str | None = None,
              node: str | None = None, **_docker_py: Any) -> tuple[Image, Iterator[dict[str, Any]]]:
        """Build an image from a Dockerfile, as docker-py does: returns (image, the build's log dicts).

        path: the context directory (its .dockerignore is honoured), with
        `dockerfile` relative to it; or fileobj: a Dockerfile, or with
        custom_context a context tar (maybe compressed). tag: one name or
        several. Raises kran.client.build.BuildError (with build_log and
        exit_code) when the build fails. docker-py's other arguments (rm,
        quiet, ...) are accepted and have no effect.
        """
        from kran.client.build import BuildError  # noqa: PLC0415 - only builds need it
        log: list[dict[str, Any]] = []
        built = None
        for line in self.build_stream(path=path, fileobj=fileobj, tag=tag, nocache=nocache,
                                      custom_context=custom_context, pull=pull, dockerfile=dockerfile,
                                      buildargs=buildargs, labels=labels, target=target, node=node):
            log.append(line)
            if "error" in line:
                raise BuildError(line["error"], log, line["errorDetail"].get("code", 1))
            if "aux" in line:
                built = (line["aux"]["ID"], line.get("node"))
        if built is None:
            raise BuildError("the build ended without an image", log)
        return self.get(built[0], node=built[1]), iter(log)

    def prune_builds(self, all: bool = False, node: str | None = None, **_docker_py: Any) -> dict[str, Any]:
        """Free the build cache: entries no image uses (every entry with all=True).

        Returns {"CachesDeleted": [...], "SpaceReclaimed": bytes}.
        """
        request = images_pb2.PruneBuildCacheRequest(all=all, node=node or "")
        response = self.client.api.call(self.client.api.images.PruneBuildCache, request)
        return {"CachesDeleted": list(response.caches_deleted) or None,
                "SpaceReclaimed": response.space_reclaimed}

    def _auth(self, server: str, auth_config: Mapping[str, str] | None) -> images_pb2.RegistryAuth:
        credentials = registry.credentials_for(self.client.credentials, server, auth_config)
        return registry.auth_message(server, credentials)


class _opened:
    """A path opened for reading, or a file object passed through (not closed)."""

    def __init__(self, source: str | os.PathLike | IO[bytes]):
        self._source = source
        self._file: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if isinstance(self._source, (str, os.PathLike)):
            try:
                self._file = open(self._source, "rb")
            except OSError as exc:
                raise errors.InvalidArgument(
                    f"cannot read {os.fspath(self._source)}: {exc.strerror}") from None
            return self._file
        return self._source

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
