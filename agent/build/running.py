"""RUN: a short-lived container in kran's own runtime, whose upper dir becomes the step's layer.

The container is made from the stage's layers with the step's own upper
and work dirs, the build's environment, user and working dir, and no
network (a fresh network namespace, as `--network none`). Its output is
handed on as it comes. Whatever happens (exit, failure, the client going
away), the container is deleted before run() returns: its shim, cgroup,
mounts and bundle.
"""

from __future__ import annotations

import codecs
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.runtime.runtime import ExecError, Runtime
from agent.runtime.spec import ContainerSpec
from kran import errors


class StepFailed(errors.FailedPrecondition):
    """A RUN whose command failed; exit_code is what docker build exits with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RunSpec:
    """What one RUN runs, and where its container's files go."""

    args: list[str]
    env: list[str]
    cwd: str
    user: str
    lowers: list[Path]
    upper: Path
    work: Path
    log: Path


async def run(runtime: Runtime, spec: RunSpec, output: Callable[[str], None]) -> None:
    """Run the command to its end; StepFailed with Docker's message if it fails or cannot start."""
    container_id = secrets.token_hex(32)
    output(f" ---> Running in {container_id[:12]}\n")
    command = " ".join(spec.args)
    try:
        await runtime.create(ContainerSpec(
            id=container_id, lowers=spec.lowers, args=spec.args, env=spec.env, cwd=spec.cwd or "/",
            user=spec.user, log_path=spec.log, upper_dir=spec.upper, work_dir=spec.work))
        attach = await runtime.attach(container_id)
        try:
            await runtime.start(container_id)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            while (chunk := await attach.read()) is not None:
                if text := decoder.decode(chunk[1]):
                    output(text)
        finally:
            await attach.close()
        status = await runtime.wait(container_id)
    except ExecError as exc:
        raise StepFailed(f"The command '{command}' could not run: {exc}", exc.exit_code) from None
    finally:
        with contextlib.suppress(errors.NotFound):
            await runtime.delete(container_id, force=True)
    output(f"Removing intermediate container {container_id[:12]}\n")
    if status.exit_code != 0:
        raise StepFailed(f"The command '{command}' returned a non-zero code: {status.exit_code}",
                         status.exit_code)
