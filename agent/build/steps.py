"""One build, step by step: each stage's FROM, its instructions, the cache, and docker build's output.

For each step the history line (`created_by`) is worked out first; with
the parent's id it is the cache key (agent.build.cache). A cached step
prints ` ---> Using cache` and reuses its result; otherwise the step runs:
metadata instructions only change the config, RUN runs a container
(agent.build.running), COPY/ADD and WORKDIR change files in an overlay of
the stage's layers (agent.build.copying), and the upper dir becomes the
step's layer, written as `docker commit` writes one. Every step's result
goes to the store's build cache, pinned until the build ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import posixpath
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.build import cache, shellwords
from agent.build.copying import copy_into, make_dirs, ownership
from agent.build.dockerfile import parse_line
from agent.build.imageconfig import apply_metadata, command_args, created_by_nop, env_of, start_config
from agent.build.instructions import Command, Copy, Instruction, Pairs, Value, parse_instruction
from agent.build.running import RunSpec, run
from agent.build.sources import Root
from agent.build.stages import Plan, Stage, copy_source_stage
from agent.containers.copy import container_root
from agent.containers.diff import write_layer
from agent.distribution.auth import Credentials
from agent.images.commit import child_document
from agent.images.content import Written, sha256_digest
from agent.images.layers import chain_id
from agent.images.store import ImageStore
from agent.runtime.runtime import Runtime
from kran import errors, reference
from kran.api.v1 import images_pb2
from kran.timefmt import now_rfc3339

# Docker's predefined build args: usable in RUN without an ARG, and kept out of history unless declared.
PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})

Pull = Callable[[str, Credentials], AsyncIterator[images_pb2.Progress]]
Emit = Callable[[images_pb2.BuildProgress], None]


@dataclass
class State:
    """Where a stage stands: the image config its last step made (as stored, and as a document to build on).

    `id` is the stored config's ("" FROM scratch). The document may differ
    from the stored bytes at a stage's start (Docker's default PATH added,
    triggers dropped); the next step's config is made from the document.
    """

    doc: dict[str, Any]
    data: bytes
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def id(self) -> str:
        """The id of the stored config ("" for scratch)."""
        return sha256_digest(self.data) if self.data else ""

    @property
    def config(self) -> dict[str, Any]:
        """The run config ("config") of the document."""
        return self.doc.setdefault("config", {})

    @property
    def chain(self) -> str | None:
        """The chain id of the top layer, None without layers."""
        top = None
        for diff_id in (self.doc.get("rootfs") or {}).get("diff_ids") or []:
            top = chain_id(top, diff_id)
        return top


@dataclass
class Options:
    """What the client asked for, as the build uses it."""

    tags: list[str]
    build_args: dict[str, str]
    target: str
    no_cache: bool
    pull: bool
    labels: dict[str, str]
    auth: list[Credentials]


class BuildRun:
    """Runs one planned build in `workdir` (context/ holds the build context); see the module docstring."""

    def __init__(self, store: ImageStore, runtime: Runtime, pull: Pull, plan: Plan, stages: list[Stage],
                 bases: list[str], meta: dict[str, str | None], options: Options, workdir: Path) -> None:
        self.store = store
        self.runtime = runtime
        self.pull = pull
        self.plan = plan
        self.stages = stages
        self.bases = bases
        self.meta = meta
        self.options = options
        self.workdir = workdir
        self.pin = store.pin()
        self.results: dict[int, State] = {}
        self.used_args: set[str] = set()
        self.step = 0
        self.total = len(plan.meta_args) + sum(1 + len(s.steps) for s in stages) + (1 if options.labels else 0)
        self.steps_made = 0
        self.current = stages[0]
        self.emit: Emit = lambda _message: None
        self.empty = workdir / "empty"
        self.empty.mkdir()

    def say(self, text: str) -> None:
        """One piece of docker build's output."""
        self.emit(images_pb2.BuildProgress(stream=text))

    def _step_dir(self) -> Path:
        self.steps_made += 1
        path = self.workdir / f"step-{self.steps_made}"
        path.mkdir()
        return path

    async def run(self, emit: Emit) -> str:
        """Build; report through `emit`; returns the image id. Releases its pins when done."""
        self.emit = emit
        try:
            for instruction in self.plan.meta_args:
                self._announce(instruction)
                self.used_args.update(name for name, _ in instruction.pairs if name in self.options.build_args)
            state: State | None = None
            for stage in self.stages:
                state = await self._stage(stage)
            assert state is not None
            if self.options.labels:
                line = "LABEL " + " ".join(f"{_quoted(k)}={_quoted(v)}" for k, v in sorted(self.options.labels.items()))
                label = parse_instruction(parse_line(line, self.plan.escape))
                self._announce(label)
                state = await self._dispatch(label, state)
            unused = sorted(set(self.options.build_args) - self.used_args - PROXY_ARGS)
            if unused:
                self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
            if not state.data:
                raise errors.InvalidArgument("No image was generated. Is your Dockerfile empty?")
            view, _ = await asyncio.to_thread(self.store.record_build, state.data, self.options.tags)
            self.say(f"Successfully built {view.id[7:19]}\n")
            for tag in self.options.tags:
                self.say(f"Successfully tagged {reference.parse_tagged(tag).familiar()}\n")
            self.emit(images_pb2.BuildProgress(image_id=view.id))
            return view.id
        finally:
            self.pin.release()

    def _announce(self, instruction: Instruction) -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {instruction.node.original}\n")

    # Stages and FROM.

    async def _stage(self, stage: Stage) -> State:
        self.current = stage
        self._announce(stage.base)
        state = await self._from(stage)
        self.say(f" ---> {_short(state.id)}\n")
        triggers = (state.doc.get("config") or {}).get("OnBuild") or []
        state.doc["config"] = start_config(state.config)
        if triggers:
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for text in triggers:
                state = await self._dispatch(parse_instruction(parse_line(text, self.plan.escape)), state)
        for instruction in stage.steps:
            self._announce(instruction)
            state = await self._dispatch(instruction, state)
        self.results[stage.index] = state
        return state

    async def _from(self, stage: Stage) -> State:
        name = self.bases[stage.index]
        if stage.base.platform:
            wanted = shellwords.process_word(stage.base.platform, self.meta, self.plan.escape)
            here = "/".join(p for p in self.store.platform if p)
            if wanted.lower() not in (here, "/".join(self.store.platform[:2])):
                raise errors.InvalidArgument(f"FROM --platform={wanted}: this node builds for {here} only")
        earlier = self.plan.stage_named(name, stage.index)
        if earlier is not None:
            base = self.results[earlier.index]
            return State(json.loads(json.dumps(base.doc)), base.data)
        if name.lower() == "scratch":
            os_name, arch, variant = self.store.platform
            doc: dict[str, Any] = {"architecture": arch, "os": os_name, **({"variant": variant} if variant else {}),
                                   "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            return State(doc, b"")
        _, config = await self._image(name)
        return State(json.loads(config), config)

    async def _image(self, name: str) -> tuple[str, bytes]:
        """The image `name`, pulled first with --pull or when the node lacks it; pinned."""
        if not self.options.pull:
            try:
                return await asyncio.to_thread(self.store.pin_image, name, self.pin)
            except errors.NotFound:
                pass
        ref = reference.parse(name)
        credentials = next((c.for_registry(ref.domain) for c in self.options.auth
                            if c.for_registry(ref.domain)), Credentials())
        async with contextlib.aclosing(self.pull(ref.full(), credentials)) as lines:
            async for line in lines:
                self.emit(images_pb2.BuildProgress(pull=line))
        return await asyncio.to_thread(self.store.pin_image, ref.full(), self.pin)

    # Steps.

    def _vars(self, state: State) -> dict[str, str | None]:
        """The variables a step expands: the ARGs in scope, overridden by the environment."""
        return {**state.args, **env_of(state.config)}

    async def _dispatch(self, instruction: Instruction, state: State) -> State:
        if isinstance(instruction, Command) and instruction.keyword == "RUN":
            return await self._run(instruction, state)
        if isinstance(instruction, Copy):
            return await self._copy(instruction, state)
        if isinstance(instruction, Pairs) and instruction.keyword == "ARG":
            return await self._arg(instruction, state)
        config = json.loads(json.dumps(state.config))
        comment = apply_metadata(instruction, config, self._vars(state), self.plan.escape, state.cmd_set)
        doc_extra: dict[str, str] = {}
        if isinstance(instruction, Value) and instruction.keyword == "MAINTAINER":
            doc_extra["author"] = comment.removeprefix("MAINTAINER ")
        is_workdir = isinstance(instruction, Value) and instruction.keyword == "WORKDIR"
        created_by = created_by_nop(config, comment, files=is_workdir)
        after = State(state.doc, state.data, state.args,
                      state.cmd_set or (isinstance(instruction, Command) and instruction.keyword == "CMD"))
        if is_workdir:
            return await self._commit(after, config, created_by,
                                      in_root=lambda root, _dir: make_dirs(root, config["WorkingDir"]))
        return await self._commit(after, config, created_by, doc_extra=doc_extra)

    async def _arg(self, instruction: Pairs, state: State) -> State:
        args = dict(state.args)
        parts = []
        for name, default in instruction.pairs:
            # As Docker: the history shows the default; a build arg's value shows only in RUN's lines.
            expanded = None if default is None else shellwords.process_word(default, self._vars(state), self.plan.escape)
            parts.append(name if expanded is None else f"{name}={expanded}")
            if name in self.options.build_args:
                args[name] = self.options.build_args[name]
                self.used_args.add(name)
            else:
                args[name] = expanded if expanded is not None else self.meta.get(name)
        after = State(state.doc, state.data, args, state.cmd_set)
        return await self._commit(after, json.loads(json.dumps(state.config)),
                                  created_by_nop(state.config, "ARG " + " ".join(parts)))

    def _run_args(self, state: State) -> dict[str, str]:
        """The build args a RUN sees: declared ones with a value (not overridden by ENV), and proxies given."""
        env = env_of(state.config)
        declared = {k: v for k, v in state.args.items() if v is not None and k not in env}
        proxies = {k: v for k, v in self.options.build_args.items() if k in PROXY_ARGS and k not in state.args}
        return {**proxies, **declared}

    async def _run(self, instruction: Command, state: State) -> State:
        args = command_args(instruction, state.config)
        run_args = self._run_args(state)
        in_history = {k: v for k, v in run_args.items() if k in state.args}
        created_by = cache.run_created_by(args, in_history)
        config = json.loads(json.dumps(state.config))

        async def execute(step_dir: Path) -> None:
            lowers = self._lowers(state)
            spec = RunSpec(args=args, env=list(config.get("Env") or []) + [f"{k}={v}" for k, v in run_args.items()],
                           cwd=config.get("WorkingDir") or "/", user=config.get("User") or "",
                           lowers=lowers or [self.empty], upper=step_dir / "upper", work=step_dir / "work",
                           log=step_dir / "run.log")
            await run(self.runtime, spec, self.say)

        return await self._commit(state, config, created_by, run_step=execute)

    async def _copy(self, instruction: Copy, state: State) -> State:
        keyword = instruction.keyword
        env = self._vars(state)
        word = lambda text: shellwords.process_word(text, env, self.plan.escape)  # noqa: E731
        texts = [word(s) for s in instruction.sources]
        for text in texts:
            if text.startswith(("http://", "https://")):
                raise errors.InvalidArgument(
                    f"{keyword} failed: {text}: remote URLs are not supported: kran builds have no network; "
                    "download the file into the build context and COPY it")
        dest = word(instruction.dest)
        if not dest.startswith("/"):  # relative to WORKDIR; a trailing "/" still means "into a directory"
            into = dest.endswith("/")
            dest = posixpath.normpath(posixpath.join("/", state.config.get("WorkingDir") or "/", dest))
            if into and not dest.endswith("/"):
                dest += "/"
        chown, chmod = word(instruction.chown), instruction.chmod
        async with self._source_root(instruction) as source_root:
            try:
                sources = [s for text in texts for s in source_root.match(text)]
                digest = await asyncio.to_thread(source_root.digest, sources)
            except errors.KranError as exc:
                raise type(exc)(f"{keyword} failed: {exc}") from None
            kind = "multi" if len(sources) > 1 else ("dir" if sources[0].is_dir else "file")
            created_by = created_by_nop(state.config, cache.copy_created_by(keyword, kind, digest, dest, chown, chmod),
                                        files=True)

            def execute(root: int, step_dir: Path) -> None:
                owner = ownership(chown, chmod, self._lowers(state))
                try:
                    copy_into(root, dest, source_root, sources, owner, step_dir, unpack=keyword == "ADD")
                except errors.KranError as exc:
                    raise type(exc)(f"{keyword} failed: {exc}") from None

            return await self._commit(state, json.loads(json.dumps(state.config)), created_by, in_root=execute)

    @contextlib.asynccontextmanager
    async def _source_root(self, instruction: Copy) -> AsyncIterator[Root]:
        """The build context, or the root filesystem of the stage or image COPY --from names."""
        if not instruction.source_stage:
            fd = os.open(self.workdir / "context", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield Root(fd, "build context")
            finally:
                os.close(fd)
            return
        text = instruction.source_stage
        source = copy_source_stage(self.plan, self.current, text)
        if source is not None:
            lowers = self._lowers(self.results[source.index])
        else:
            image_id, _ = await self._image(text)
            lowers = await asyncio.to_thread(self.store.image_layers, image_id)
        with self._read_root(lowers) as fd:
            yield Root(fd, f"stage {text}")

    # Layers and the cache.

    def _lowers(self, state: State) -> list[Path]:
        chain = state.chain
        return self.store.layers.lowers(chain) if chain else []

    @contextlib.contextmanager
    def _read_root(self, lowers: list[Path]) -> Iterator[int]:
        if not lowers:
            fd = os.open(self.empty, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield fd
            finally:
                os.close(fd)
            return
        with container_root(None, [*lowers[1:], self.empty], lowers[0], self.workdir, self.workdir, False) as fd:
            yield fd

    async def _commit(self, state: State, config: dict[str, Any], created_by: str, *,
                      in_root: Callable[[int, Path], None] | None = None,
                      run_step: Callable[[Path], Awaitable[None]] | None = None,
                      doc_extra: Mapping[str, str] | None = None) -> State:
        """Reuse the cached result of the step, or do it and store what it made.

        `in_root(root_fd, step_dir)` changes files in an overlay of the
        stage's layers (in a worker thread); `run_step(step_dir)` runs a
        container with step_dir's upper and work dirs; neither: only the
        config changes.
        """
        key = cache.step_key(state.id, created_by)
        if not self.options.no_cache:
            cached = await asyncio.to_thread(self.store.cached_step, key, self.pin)
            if cached is not None:
                self.say(" ---> Using cache\n")
                return self._after(state, cached)
        with self.store.temp_dir() as ingest:
            layer = None
            if in_root is not None or run_step is not None:
                step_dir = self._step_dir()
                (step_dir / "upper").mkdir()
                (step_dir / "work").mkdir()
                if run_step is not None:
                    await run_step(step_dir)
                else:
                    await _settled(self._in_root, state, step_dir, in_root)
                layer = await _settled(self._layer, step_dir / "upper", ingest)
            history = {"created": now_rfc3339(), "created_by": created_by}
            doc = child_document(state.doc, config, layer.digest if layer else None, history)
            doc.update(doc_extra or {})
            data = _dumps(doc)
            await _settled(self.store.record_step, key, data, layer, self.pin)
        return self._after(state, data)

    def _after(self, state: State, data: bytes) -> State:
        after = State(json.loads(data), data, state.args, state.cmd_set)
        self.say(f" ---> {_short(after.id)}\n")
        return after

    def _in_root(self, state: State, step_dir: Path, change: Any) -> None:
        lowers = self._lowers(state) or [self.empty]
        with container_root(None, lowers, step_dir / "upper", step_dir / "work", step_dir, True) as root:
            change(root, step_dir)

    def _layer(self, upper: Path, ingest: Path) -> Written | None:
        """The upper dir as a layer tar in the ingest dir (hashed as it is written); None if empty."""
        read_fd, write_fd = os.pipe()
        failed: list[BaseException] = []

        def produce() -> None:
            try:
                with open(write_fd, "wb") as out:
                    write_layer(upper, out)
            except BaseException as exc:  # noqa: BLE001 - handed to the reader's thread below
                failed.append(exc)

        writer = threading.Thread(target=produce, name="build-layer", daemon=True)
        writer.start()
        try:
            with open(read_fd, "rb") as source:
                written = self.store.ingest_layer(source, ingest)
        finally:
            writer.join()
        if failed:
            raise failed[0]
        return written


async def _settled(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a worker thread; if the build is cancelled meanwhile, wait for the thread to finish.

    A thread cannot be stopped: its mounts and files must be its own again
    before the build's directory is removed.
    """
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.gather(work, return_exceptions=True)
        raise


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _dumps(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _quoted(text: str) -> str:
    """A word the Dockerfile lexer reads back as `text` (in double quotes, nothing expanded)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
