"""Reading a container's cgroup (for top, stats and metrics) and freezing it (commit --pause).

The runtime (agent.runtime.cgroups) creates the group at
<cgroup parent>/<container id>: one directory per controller on cgroup v1,
one directory on v2. This is the read side; it never creates anything.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.runtime.cgroups import CGROUP_ROOT, V1_CONTROLLERS, is_v2
from kran import errors

FREEZE_TIMEOUT = 10.0


@dataclass(frozen=True)
class CgroupView:
    """Where one container's cgroup files are: `dirs` by v1 controller, or `dirs[""]` on v2."""

    version: int
    dirs: dict[str, Path]

    def file(self, controller: str, name: str) -> Path:
        """The path of a control file (`controller` is ignored on v2)."""
        return self.dirs["" if self.version == 2 else controller] / name

    def read(self, controller: str, name: str) -> str | None:
        """A control file's text, None if the group or the file does not exist."""
        try:
            return self.file(controller, name).read_text()
        except (FileNotFoundError, KeyError):
            return None

    def exists(self) -> bool:
        """Whether the group exists (the container has a task)."""
        return self.file("pids", "cgroup.procs").exists()

    def procs(self) -> list[int]:
        """The host pids of the processes in the group, sorted; empty when it does not exist."""
        text = self.read("pids", "cgroup.procs") or ""
        return sorted(int(line) for line in text.split())


def container_cgroup(cgroup_parent: str, container_id: str, root: Path = CGROUP_ROOT) -> CgroupView:
    """The cgroup the runtime made for the container `container_id` under `cgroup_parent`."""
    tail = f"{cgroup_parent}/{container_id}".strip("/")
    if is_v2(root):
        return CgroupView(2, {"": root / tail})
    # blkio is not one the runtime joins on v1; it is read when an administrator set it up.
    return CgroupView(1, {c: root / c / tail for c in (*V1_CONTROLLERS, "blkio")})


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + FREEZE_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise errors.Internal(f"the container's processes did not {what} within {FREEZE_TIMEOUT:.0f}s")
        time.sleep(0.01)


@contextlib.contextmanager
def frozen(view: CgroupView) -> Iterator[None]:
    """Freeze every process of the group for the duration (docker pause), thawing afterwards."""
    if view.version == 2:
        control, frozen_text, thawed_text = view.file("", "cgroup.freeze"), "1", "0"
        is_frozen = lambda: "frozen 1" in (view.read("", "cgroup.events") or "")  # noqa: E731
    else:
        control, frozen_text, thawed_text = view.file("freezer", "freezer.state"), "FROZEN", "THAWED"
        is_frozen = lambda: (view.read("freezer", "freezer.state") or "").strip() == "FROZEN"  # noqa: E731
    control.write_text(frozen_text)
    try:
        _wait_for(is_frozen, "freeze")
        yield
    finally:
        control.write_text(thawed_text)
