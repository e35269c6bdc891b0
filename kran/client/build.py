"""docker build for the SDK: the build context as a tar stream, and the build's output as docker's dicts.

The context is made on the client: the directory's files, less what its
.dockerignore excludes, as a tar (owners 0:0, as the docker CLI sends
them) streamed in chunks while it is written. The Dockerfile itself
travels in the options, so it is found wherever it is (`-f` outside the
context, or read from stdin). A tar given as the context (docker-py's
custom_context, `kran build - < context.tar`) is sent as it is.
"""

from __future__ import annotations

import os
import queue
import tarfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kran import errors, reference
from kran.client.api import CHUNK_SIZE
from kran.dockerignore import Matcher, read_patterns

if TYPE_CHECKING:
    from kran.api.v1 import images_pb2

IGNORE_FILE = ".dockerignore"
_END = object()


class BuildError(errors.KranError):
    """A build that failed on its node: `msg`, the output so far (`build_log`) and docker's exit code."""

    def __init__(self, reason: str, build_log: list[dict[str, Any]], exit_code: int = 1):
        super().__init__(reason)
        self.msg = reason
        self.build_log = build_log
        self.exit_code = exit_code or 1


def dockerignore(root: Path) -> Matcher:
    """The context directory's .dockerignore patterns (none when it has no such file)."""
    try:
        text = (root / IGNORE_FILE).read_text(errors="replace")
    except FileNotFoundError:
        return Matcher([])
    except OSError as exc:
        raise errors.InvalidArgument(f"error checking context: {IGNORE_FILE}: {exc.strerror}") from None
    try:
        return Matcher(read_patterns(text))
    except ValueError as exc:
        raise errors.InvalidArgument(f"error checking context: {exc}") from None


def context_paths(root: Path, matcher: Matcher) -> Iterator[str]:
    """The context's paths (relative, sorted, parents first) that .dockerignore leaves in."""
    def walk(rel: str) -> Iterator[str]:
        try:
            names = sorted(os.listdir(root / rel if rel else root))
        except OSError as exc:
            raise errors.InvalidArgument(f"error checking context: can't stat '{root / rel}': {exc.strerror}") from None
        for name in names:
            path = f"{rel}/{name}" if rel else name
            is_dir = (root / path).is_dir() and not (root / path).is_symlink()
            if not matcher.excluded(path):
                yield path
            elif not (is_dir and matcher.has_exclusions):
                continue  # nothing below an excluded directory can come back without a `!` pattern
            if is_dir:
                yield from walk(path)
    return walk("")


class _QueueWriter:
    """A file object tarfile writes to; each full chunk goes to a queue for the sending thread."""

    def __init__(self, chunks: queue.Queue[Any]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self.closed = False

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= CHUNK_SIZE:
            self._chunks.put(bytes(self._buffer[:CHUNK_SIZE]))
            del self._buffer[:CHUNK_SIZE]
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            self._chunks.put(bytes(self._buffer))
            self._buffer.clear()


def directory_context(root: Path) -> Iterator[bytes]:
    """The tar of a context directory (less what .dockerignore excludes), in chunks as it is written."""
    matcher = dockerignore(root)
    chunks: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def write() -> None:
        try:
            sink = _QueueWriter(chunks)
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for path in context_paths(root, matcher):
                    if stop.is_set():
                        return
                    _add(tar, root, path)
            sink.flush()
            chunks.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading side
            chunks.put(exc)

    threading.Thread(target=write, name="build-context", daemon=True).start()
    try:
        while (item := chunks.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not chunks.empty():  # let a writer blocked on a full queue see the stop
            chunks.get_nowait()


def _add(tar: tarfile.TarFile, root: Path, path: str) -> None:
    full = root / path
    try:
        info = tar.gettarinfo(str(full), arcname=path)
    except OSError as exc:
        raise errors.InvalidArgument(f"error checking context: can't stat '{full}': {exc.strerror}") from None
    if info is None:
        return  # a socket: it cannot travel in a tar
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isreg():
        try:
            with open(full, "rb") as f:
                tar.addfile(info, f)
        except OSError as exc:
            raise errors.InvalidArgument(f"error checking context: can't open '{full}': {exc.strerror}") from None
    else:
        tar.addfile(info)


def file_chunks(fileobj: IO[bytes]) -> Iterator[bytes]:
    """A file object's bytes in chunks."""
    while data := fileobj.read(CHUNK_SIZE):
        yield data


class Sending:
    """The Build call's messages: options, then the context. `sent` counts the context's bytes; a
    context that fails to read ends the stream early and keeps its error in `failed` (grpc's request
    thread cannot raise it to the caller)."""

    def __init__(self, options: images_pb2.BuildOptions, context: Iterable[bytes]) -> None:
        self.options = options
        self.context = context
        self.sent = 0
        self.failed: BaseException | None = None

    def __iter__(self) -> Iterator[images_pb2.BuildRequest]:
        from kran.api.v1 import images_pb2  # noqa: PLC0415 - loaded with the call

        yield images_pb2.BuildRequest(options=self.options)
        try:
            for chunk in self.context:
                self.sent += len(chunk)
                yield images_pb2.BuildRequest(chunk=chunk)
        except Exception as exc:  # noqa: BLE001 - raised to the caller by build_stream
            self.failed = exc


def progress_dict(message: images_pb2.BuildProgress) -> dict[str, Any]:
    """A BuildProgress as a line of docker build's JSON stream."""
    from kran.client.registry import progress_dict as pull_dict  # noqa: PLC0415

    line: dict[str, Any]
    if message.HasField("pull"):
        line = pull_dict(message.pull)
    elif message.error:
        line = {"error": message.error, "errorDetail": {"message": message.error, "code": message.error_code}}
    elif message.image_id:
        line = {"aux": {"ID": message.image_id}}
    else:
        line = {"stream": message.stream}
    if message.node_name:
        line["node"] = message.node_name
    return line


def build_args(values: Mapping[str, Any] | None) -> dict[str, str]:
    """docker-py's buildargs as strings (None values are left out, as Docker leaves unset args)."""
    return {str(k): str(v) for k, v in (values or {}).items() if v is not None}


def build_stream(client: Any, path: str | os.PathLike[str] | None = None, fileobj: IO[bytes] | None = None,
                 tag: str | Iterable[str] | None = None, nocache: bool = False, custom_context: bool = False,
                 pull: bool = False, dockerfile: str | None = None, buildargs: Mapping[str, Any] | None = None,
                 labels: Mapping[str, str] | None = None, target: str | None = None, node: str | None = None,
                 sending: list[Sending] | None = None) -> Iterator[dict[str, Any]]:
    """Run a build and yield docker's JSON stream dicts (see ImageCollection.build).

    `sending`, if given, receives the call's Sending (the CLI shows how much context it sent).
    """
    from kran.api.v1 import images_pb2  # noqa: PLC0415 - only builds need it
    from kran.client.registry import auth_message  # noqa: PLC0415

    tags = [tag] if isinstance(tag, str) else list(tag or [])
    for name in tags:
        try:
            reference.parse_tagged(name)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f'invalid argument "{name}" for "-t, --tag" flag: {exc}') from None
    store = client.credentials
    options = images_pb2.BuildOptions(
        tags=tags, build_args=build_args(buildargs), target=target or "", no_cache=nocache, pull=pull,
        labels=dict(labels or {}), node=node or "",
        auth=[auth_message(server, store.get(server)) for server in store.servers()])
    context: Iterable[bytes]
    if fileobj is not None and custom_context:
        options.dockerfile = dockerfile or "Dockerfile"
        context = file_chunks(fileobj)
    elif fileobj is not None:
        options.dockerfile, options.dockerfile_content = "Dockerfile", fileobj.read()
        context = []
    elif path is not None:
        root = Path(path)
        if not root.is_dir():
            raise errors.InvalidArgument(f'unable to prepare context: path "{path}" not found')
        file = Path(dockerfile) if dockerfile and os.path.isabs(dockerfile) else root / (dockerfile or "Dockerfile")
        try:
            options.dockerfile_content = file.read_bytes()
        except OSError as exc:
            raise errors.InvalidArgument("unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                                         f"lstat {file}: {(exc.strerror or str(exc)).lower()}") from None
        options.dockerfile = file.name
        context = directory_context(root)
    else:
        raise errors.InvalidArgument("Either path or fileobj needs to be provided.")
    messages = Sending(options, context)
    if sending is not None:
        sending.append(messages)
    try:
        for message in client.api.stream(client.api.images.Build, iter(messages)):
            line = progress_dict(message)
            yield line
            if "error" in line:
                return  # the call ends with the same error: the line has said it
    except errors.KranError:
        if messages.failed is not None:
            raise messages.failed from None
        raise
