"""Task states: the transition table, state.json round trips, timestamps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.runtime.state import Status, TaskState, TransitionError, check_transition, read_state, write_state
from kran.timefmt import now_rfc3339


def test_transitions_only_move_forward() -> None:
    check_transition(Status.CREATED, Status.RUNNING)
    check_transition(Status.CREATED, Status.STOPPED)
    check_transition(Status.RUNNING, Status.STOPPED)
    for current, new in [(Status.RUNNING, Status.CREATED), (Status.STOPPED, Status.RUNNING),
                         (Status.RUNNING, Status.RUNNING), (Status.STOPPED, Status.STOPPED)]:
        with pytest.raises(TransitionError):
            check_transition(current, new)


def test_state_round_trip(tmp_path: Path) -> None:
    state = TaskState(id="c1", pid=10, shim_pid=9)
    assert state.exit_status() is None
    state.move(Status.RUNNING)
    state.move(Status.STOPPED)
    state.exit_code, state.oom_killed = 137, True
    write_state(tmp_path, state)
    again = read_state(tmp_path)
    assert again == state
    assert again.exit_status().exit_code == 137 and again.exit_status().oom_killed
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_time_is_rfc3339_nano() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", now_rfc3339())
