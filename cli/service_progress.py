"""Waiting for a service to converge, with docker's progress lines.

    overall progress: 2 out of 3 tasks
    1/3: running
    2/3: running
    3/3: starting
    verify: Service converged

On a terminal the block is redrawn in place as tasks move (with docker's
bars); without one, a line is printed each time it changes. An update is
done when the leader says so (UpdateStatus completed); a paused update
fails with the leader's message.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from cli.progress import FULL_BAR, bar
from kran import errors
from kran.client import Service

POLL = 0.5
# The task states in the order docker's progress bar fills them.
STEPS = ("new", "pending", "assigned", "starting", "running")
_ESC = "\x1b["


class UpdatePaused(errors.FailedPrecondition):
    """The service's update (or rollback) stopped on a failure."""


def slot_states(tasks: Sequence[Mapping[str, Any]], replicas: int) -> dict[int, str]:
    """Each slot's state: its newest task desired running, else its newest task ("" if none).

    tasks come as ListTasks gives them: by slot, newest first.
    """
    states: dict[int, tuple[bool, str]] = {}
    for task in tasks:
        slot = task["Slot"]
        live = task["DesiredState"] == "running"
        if 1 <= slot <= replicas and (slot not in states or live and not states[slot][0]):
            states[slot] = (live, task["Status"]["State"])
    return {slot: states[slot][1] if slot in states else "" for slot in range(1, replicas + 1)}


def progress_lines(states: Mapping[int, str], replicas: int, rolling_back: bool,
                   terminal: bool) -> list[str]:
    """The block docker shows: overall progress, then one line per slot."""
    running = sum(1 for state in states.values() if state == "running")
    what = "rolling back update: " if rolling_back else ""
    lines = [f"overall progress: {what}{running} out of {replicas} tasks"]
    for slot in range(1, replicas + 1):
        state = states.get(slot) or "new"
        line = f"{slot}/{replicas}: {state:<10}"
        if terminal and state in STEPS:
            line += bar(STEPS.index(state) + 1, len(STEPS), FULL_BAR)
        lines.append(line.rstrip())
    return lines


class _Printer:
    """Prints blocks of lines: redrawn on a terminal, changed lines only otherwise."""

    def __init__(self, out: TextIO, terminal: bool) -> None:
        self.out, self.terminal = out, terminal
        self.shown: list[str] = []

    def show(self, lines: list[str]) -> None:
        if self.terminal:
            if self.shown:
                self.out.write(f"{_ESC}{len(self.shown)}A")
            for line in lines:
                self.out.write(f"{_ESC}2K{line}\n")
        else:
            for index, line in enumerate(lines):
                if index >= len(self.shown) or self.shown[index] != line:
                    self.out.write(line + "\n")
        self.out.flush()
        self.shown = lines

    def note(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
        if self.terminal:
            self.shown = []


def wait_converged(service: Service, out: TextIO | None = None,
                   sleep: Callable[[float], None] = time.sleep, verify: bool = True) -> None:
    """Wait until every slot runs a task of the current spec (and any update is completed).

    Raises UpdatePaused when the update (or rollback) pauses. With verify,
    a converged service is watched for its update monitor period first, as
    docker does.
    """
    out = out or sys.stdout
    printer = _Printer(out, out.isatty())
    announced = False
    while True:
        service.reload()
        attrs = service.attrs
        replicas = attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
        status = attrs.get("UpdateStatus", {})
        state = status.get("State", "")
        rolling_back = state.startswith("rollback")
        if rolling_back and not announced:
            printer.note(f"rollback: {status.get('Message', '')}")
            announced = True
        states = slot_states(service.tasks(), replicas)
        printer.show(progress_lines(states, replicas, rolling_back, printer.terminal))
        if state in ("paused", "rollback_paused"):
            raise UpdatePaused(f"service {'rollback' if rolling_back else 'update'} paused: "
                               f"{status.get('Message', '')}")
        settled = state not in ("updating", "rollback_started")
        if settled and all(s == "running" for s in states.values()):
            monitor = attrs["Spec"]["RollbackConfig" if rolling_back else "UpdateConfig"]["Monitor"]
            if verify and monitor > 0 and state not in ("completed", "rollback_completed"):
                seconds = monitor / 1e9
                printer.note(f"verify: Waiting {seconds:g} seconds to verify that tasks are "
                             "stable...")
                sleep(seconds)
                service.reload()
                again = slot_states(service.tasks(), replicas)
                if not all(s == "running" for s in again.values()):
                    continue
            printer.note("verify: Service converged")
            return
        sleep(POLL)
