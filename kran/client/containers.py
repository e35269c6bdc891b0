"""Containers: docker-py's `client.containers` and its `Container` model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from google.protobuf.timestamp_pb2 import Timestamp

from kran import containerinspect, errors
from kran.api.v1 import containers_pb2
from kran.client.config import create_request, env_list, split_command
from kran.client.models import Collection, PlacedModel
from kran.client.streams import STDERR, STDOUT, StreamSession
from kran.imageinspect import timestamp_rfc3339nano

if TYPE_CHECKING:
    from kran.client.images import Image

# Docker's change kinds in `GET /containers/{id}/changes`.
CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}


class ContainerError(errors.KranError):
    """A container run by `containers.run()` exited with a non-zero status (docker-py)."""

    def __init__(self, container: Container, exit_status: int, command: Any, image: str,
                 stderr: bytes | None):
        self.container = container
        self.exit_status = exit_status
        self.command = command
        self.image = image
        self.stderr = stderr
        err = f": {stderr.decode(errors='replace')}" if stderr else ""
        super().__init__(f"Command '{command}' in image '{image}' returned non-zero exit "
                         f"status {exit_status}{err}")


class ExecResult(NamedTuple):
    """What exec_run() gives: the exit code (None when detached or streamed) and output."""

    exit_code: int | None
    output: Any


class LogLine(NamedTuple):
    """One log record: "stdout" or "stderr", its bytes, and its RFC3339Nano time."""

    stream: str
    data: bytes
    time: str


def _timestamp(value: datetime | float | int | Timestamp | None) -> Timestamp | None:
    """since/until as a Timestamp: a datetime, unix seconds, or a Timestamp."""
    if value is None or isinstance(value, Timestamp):
        return value
    ts = Timestamp()
    if isinstance(value, datetime):
        ts.FromDatetime(value)
    else:
        seconds = float(value)
        ts.seconds = int(seconds // 1)
        ts.nanos = int(round((seconds - ts.seconds) * 1e9))
    return ts


def _filters(filters: Mapping[str, Any] | None) -> dict[str, containers_pb2.FilterValues]:
    """Docker's filters (a value or a list of values per key) as the API's map."""
    out = {}
    for key, value in (filters or {}).items():
        values = value if isinstance(value, (list, tuple, set)) else [value]
        texts = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
        out[key] = containers_pb2.FilterValues(values=texts)
    return out


class Container(PlacedModel):
    """A container: `attrs` is shaped like `docker inspect`; `message` is the API's."""

    def __init__(self, attrs: dict[str, Any], client: Any, collection: Collection,
                 message: containers_pb2.Container | None = None):
        super().__init__(attrs, client, collection)
        self.message = message if message is not None else containers_pb2.Container()

    @property
    def name(self) -> str:
        """The name, without Docker's leading "/"."""
        return (self.attrs.get("Name") or "").lstrip("/")

    @property
    def status(self) -> str:
        """created, running, paused, restarting, removing, exited or dead."""
        return self.attrs["State"]["Status"]

    @property
    def labels(self) -> dict[str, str]:
        """The container's labels."""
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})

    @property
    def image(self) -> Image | None:
        """The container's image, or None when the image is gone."""
        try:
            return self.client.images.get(self.attrs["Image"], node=self.node_id or None)
        except errors.NotFound:
            return None

    def _call(self, name: str, request: Any) -> Any:
        api = self.client.api
        return api.call(getattr(api.containers, name), request)

    def _update(self, message: containers_pb2.Container) -> None:
        if message.id:
            self.message = message
            self.attrs = containerinspect.inspect(message)

    def reload(self) -> None:
        """Fetch the container again."""
        fresh = self.collection.get(self.id)
        self.attrs, self.message = fresh.attrs, fresh.message

    def start(self) -> None:
        """Start the container."""
        self._update(self._call("Start", containers_pb2.StartContainerRequest(
            container=self.id)))

    def stop(self, timeout: int | None = None, signal: str | None = None) -> None:
        """Send the stop signal, then SIGKILL after timeout seconds."""
        self._update(self._call("Stop", containers_pb2.StopContainerRequest(
            container=self.id, timeout=timeout or 0, timeout_set=timeout is not None,
            signal=signal or "")))

    def restart(self, timeout: int | None = None) -> None:
        """Stop (as stop()) and start the container again."""
        self._update(self._call("Restart", containers_pb2.StopContainerRequest(
            container=self.id, timeout=timeout or 0, timeout_set=timeout is not None)))

    def kill(self, signal: str | int | None = None) -> None:
        """Send a signal (default SIGKILL)."""
        self._update(self._call("Kill", containers_pb2.KillContainerRequest(
            container=self.id, signal="" if signal is None else str(signal))))

    def remove(self, v: bool = False, force: bool = False) -> None:
        """Remove the container (force: kill it first if it runs)."""
        self._call("Remove", containers_pb2.RemoveContainerRequest(
            container=self.id, force=force, volumes=v))

    def rename(self, name: str) -> None:
        """Give the container a new name."""
        self._update(self._call("Rename", containers_pb2.RenameContainerRequest(
            container=self.id, name=name)))

    def wait(self, timeout: float | None = None, condition: str | None = None) -> dict[str, Any]:
        """Block until the condition (not-running, next-exit, removed) is met.

        Returns {"StatusCode": N, "Error": None or {"Message": text}}, as docker-py.
        """
        api = self.client.api
        response = api.call(api.containers.Wait, containers_pb2.WaitContainerRequest(
            container=self.id, condition=condition or ""), timeout=timeout)
        return {"StatusCode": response.status_code,
                "Error": {"Message": response.error} if response.error else None}

    def log_lines(self, stdout: bool = True, stderr: bool = True, follow: bool = False,
                  tail: str | int = "all", since: Any = None,
                  until: Any = None) -> Iterator[LogLine]:
        """The log as records with their stream and time; follow waits for more."""
        request = containers_pb2.LogsRequest(
            container=self.id, follow=follow, tail=str(tail), stdout=stdout, stderr=stderr,
            since=_timestamp(since), until=_timestamp(until))
        api = self.client.api
        for entry in api.stream(api.containers.Logs, request):
            stream = STDERR if entry.stream == containers_pb2.STREAM_STDERR else STDOUT
            yield LogLine(stream, entry.data, timestamp_rfc3339nano(entry.time))

    def logs(self, stdout: bool = True, stderr: bool = True, stream: bool = False,
             timestamps: bool = False, tail: str | int = "all", since: Any = None,
             follow: bool | None = None, until: Any = None) -> bytes | Iterator[bytes]:
        """The log as bytes, or (stream=True) a generator of chunks, as docker-py."""
        follow = stream if follow is None else follow
        lines = self.log_lines(stdout=stdout, stderr=stderr, follow=follow, tail=tail,
                               since=since, until=until)
        chunks = (f"{line.time} ".encode() + line.data if timestamps else line.data
                  for line in lines)
        return chunks if stream else b"".join(chunks)

    def attach_socket(self, stdin: bool = False, stdout: bool = True, stderr: bool = True,
                      logs: bool = False, detach_keys: str | None = None,
                      start: bool = False) -> StreamSession:
        """Attach; start=True also starts the container once attached (no output lost)."""
        options = containers_pb2.AttachOptions(
            container=self.id, stdin=stdin, stdout=stdout, stderr=stderr,
            detach_keys=detach_keys or "", logs=logs, start=start)
        api = self.client.api
        return StreamSession(api, api.containers.Attach,
                             containers_pb2.AttachRequest(options=options),
                             containers_pb2.AttachRequest)

    def attach(self, stdout: bool = True, stderr: bool = True, stream: bool = False,
               logs: bool = False, detach_keys: str | None = None) -> bytes | Iterator[bytes]:
        """Output until the container stops: bytes, or a generator with stream=True."""
        session = self.attach_socket(stdout=stdout, stderr=stderr, logs=logs,
                                     detach_keys=detach_keys)
        chunks = (data for _, data in session)
        return chunks if stream else b"".join(chunks)

    def exec_socket(self, cmd: str | Iterable[str], stdin: bool = False, tty: bool = False,
                    privileged: bool = False, user: str = "", detach: bool = False,
                    environment: Mapping[str, Any] | Iterable[str] | None = None,
                    workdir: str | None = None, detach_keys: str | None = None,
                    size: tuple[int, int] | None = None) -> StreamSession:
        """Run a command in the container; the session carries its I/O and exit code.

        size: (height, width) of the exec's terminal, with tty=True.
        """
        options = containers_pb2.ExecOptions(
            container=self.id, cmd=split_command(cmd), env=env_list(environment), user=user,
            working_dir=workdir or "", tty=tty, stdin=stdin, detach=detach,
            privileged=privileged, detach_keys=detach_keys or "")
        if size:
            options.size.height, options.size.width = size
        api = self.client.api
        return StreamSession(api, api.containers.Exec,
                             containers_pb2.ExecRequest(options=options),
                             containers_pb2.ExecRequest)

    def exec_run(self, cmd: str | Iterable[str], stdout: bool = True, stderr: bool = True,
                 stdin: bool = False, tty: bool = False, privileged: bool = False,
                 user: str = "", detach: bool = False, stream: bool = False,
                 socket: bool = False, environment: Any = None, workdir: str | None = None,
                 demux: bool = False) -> ExecResult:
        """Run a command as docker-py does: (exit_code, output).

        output is bytes, (stdout, stderr) with demux, a generator with stream
        (exit_code None), or the StreamSession itself with socket.
        """
        session = self.exec_socket(cmd, stdin=stdin, tty=tty, privileged=privileged,
                                   user=user, detach=detach, environment=environment,
                                   workdir=workdir)
        if socket:
            return ExecResult(None, session)
        if detach:
            for _ in session:
                pass
            return ExecResult(None, b"")
        wanted = {STDOUT: stdout, STDERR: stderr}
        if stream:
            return ExecResult(None, (data for name, data in session if wanted[name]))
        out, err = session.read_all()
        out, err = (out if stdout else b""), (err if stderr else b"")
        return ExecResult(session.exit_code, (out or None, err or None) if demux else out + err)

    def top(self) -> dict[str, Any]:
        """The container's processes: {"Titles": [...], "Processes": [[...], ...]}."""
        response = self._call("Top", containers_pb2.TopRequest(container=self.id))
        return {"Titles": list(response.titles),
                "Processes": [list(p.fields) for p in response.processes]}

    def stats(self, stream: bool = True, decode: bool | None = None) -> Any:
        """Docker-shaped stats: a generator of samples, or one sample (stream=False).

        Each sample carries the previous one as precpu_stats, so CPU % can be
        computed from any sample but the first.
        """
        api = self.client.api
        samples = api.stream(api.containers.Stats,
                             containers_pb2.StatsRequest(container=self.id, stream=stream))

        def shaped() -> Iterator[dict[str, Any]]:
            previous = None
            for sample in samples:
                yield containerinspect.stats(sample, previous)
                previous = sample
        if stream:
            return shaped()
        return next(shaped())

    def diff(self) -> list[dict[str, Any]]:
        """Filesystem changes: [{"Path": "/etc", "Kind": 0|1|2}] (changed, added, deleted)."""
        response = self._call("Diff", containers_pb2.DiffRequest(container=self.id))
        return [{"Path": c.path, "Kind": CHANGE_KINDS.get(c.kind, 0)} for c in response.changes]

    def commit(self, repository: str | None = None, tag: str | None = None,
               message: str | None = None, author: str | None = None,
               changes: str | Iterable[str] | None = None, pause: bool = True) -> Image:
        """Make an image of the container's filesystem (one more layer)."""
        reference = ""
        if repository:
            reference = f"{repository}:{tag}" if tag else repository
        if isinstance(changes, str):
            changes = [changes]
        image = self._call("Commit", containers_pb2.CommitRequest(
            container=self.id, reference=reference, message=message or "",
            author=author or "", changes=list(changes or []), pause=pause))
        return self.client.images._model(image)

    def get_archive(self, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        """A tar of path in the container, as chunks, and Docker's stat of path."""
        api = self.client.api
        messages = api.stream(api.containers.CopyFrom,
                              containers_pb2.CopyFromRequest(container=self.id, path=path))

        def chunks() -> Iterator[bytes]:
            try:
                for message in messages:
                    yield message.data
            finally:
                messages.close()
        from kran.client.archive import archive_stat  # noqa: PLC0415 - tarfile only for cp
        return archive_stat(chunks())

    def stat_path(self, path: str) -> dict[str, Any]:
        """Docker's stat of path in the container (NotFound when it does not exist)."""
        chunks, stat = self.get_archive(path)
        chunks.close()
        return stat

    def put_archive(self, path: str, data: bytes | Iterable[bytes] | Any) -> bool:
        """Unpack a tar (bytes, chunks or a file object) into the directory path."""
        header = containers_pb2.CopyToHeader(container=self.id, path=path)
        from kran.client.archive import chunked_tar  # noqa: PLC0415 - tarfile only for cp
        requests = chunked_tar(containers_pb2.CopyToRequest(header=header), data,
                               lambda chunk: containers_pb2.CopyToRequest(chunk=chunk))
        api = self.client.api
        api.call(api.containers.CopyTo, requests)
        return True


class ContainerCollection(Collection):
    """The containers of the cluster."""

    model = Container

    def _model(self, message: containers_pb2.Container) -> Container:
        return Container(containerinspect.inspect(message), self.client, self, message=message)

    def create(self, image: str, command: str | Iterable[str] | None = None,
               name: str | None = None, node: str | None = None, **kwargs: Any) -> Container:
        """Create a container (docker-py's keywords and placement ones; see kran.client.config)."""
        request = create_request(image, command, name, node, **kwargs)
        api = self.client.api
        return self._model(api.call(api.containers.Create, request))

    def run(self, image: str, command: str | Iterable[str] | None = None,
            stdout: bool = True, stderr: bool = False, remove: bool = False,
            detach: bool = False, stream: bool = False, **kwargs: Any) -> Any:
        """Create and start a container, as docker-py.

        detach: return the Container at once. Otherwise the output (stdout and,
        with stderr=True, stderr) as bytes, or a generator with stream=True;
        a non-zero exit raises ContainerError carrying the stderr.
        """
        container = self.create(image, command, **kwargs)
        if detach:
            container.start()
            return container
        session = container.attach_socket(stdout=True, stderr=True, start=True)
        wanted = {STDOUT: stdout, STDERR: stderr}

        def output() -> Iterator[bytes]:
            errors_seen: list[bytes] = []
            for name, data in session:
                if name == STDERR:
                    errors_seen.append(data)
                if wanted[name]:
                    yield data
            code = session.exit_code
            if code is None:
                code = container.wait()["StatusCode"]
            if remove and not kwargs.get("auto_remove"):
                container.remove(force=True)
            if code != 0:
                raise ContainerError(container, code, command, image, b"".join(errors_seen))
        return output() if stream else b"".join(output())

    def get(self, container_id: str) -> Container:
        """A container by id, unique id prefix or name."""
        api = self.client.api
        return self._model(api.call(api.containers.Inspect,
                                    containers_pb2.InspectContainerRequest(
                                        container=container_id)))

    def list(self, all: bool = False, filters: Mapping[str, Any] | None = None,
             limit: int = -1) -> list[Container]:
        """Containers, newest first: running ones, or all; the newest `limit` (implies all).

        filters: status, name, label (K or K=V), ancestor, node, id; a status
        filter shows stopped containers too, as Docker.
        """
        request = containers_pb2.ListContainersRequest(
            all=all or limit > 0 or "status" in (filters or {}),
            limit=max(limit, 0), filters=_filters(filters))
        api = self.client.api
        return [self._model(m) for m in api.call(api.containers.List, request).containers]

    def prune(self, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Remove stopped containers: {"ContainersDeleted": [...], "SpaceReclaimed": N}."""
        api = self.client.api
        response = api.call(api.containers.Prune,
                            containers_pb2.PruneContainersRequest(filters=_filters(filters)))
        return {"ContainersDeleted": list(response.deleted) or None,
                "SpaceReclaimed": response.space_reclaimed}
