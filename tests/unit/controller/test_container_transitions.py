"""Container events from two observed states (pure logic)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from controller.containers import transitions
from kran.api.v1.containers_pb2 import ContainerState


def state(status, started=0, finished=0, exit_code=0, oom=False):
    out = ContainerState(status=status, exit_code=exit_code, oom_killed=oom)
    if started:
        out.started_at.CopyFrom(Timestamp(seconds=started))
    if finished:
        out.finished_at.CopyFrom(Timestamp(seconds=finished))
    return out


def test_nothing_for_a_new_created_container():
    assert transitions(None, state("created")) == []
    assert transitions(state("created"), state("created")) == []


def test_start_then_die():
    assert transitions(state("created"), state("running", 10)) == [("start", {})]
    assert transitions(state("running", 10), state("exited", 10, 20, 3)) == [
        ("die", {"exitCode": "3"})]


def test_missed_states_are_told_in_time_order():
    assert transitions(state("created"), state("exited", 10, 20, 1)) == [
        ("start", {}), ("die", {"exitCode": "1"})]
    assert transitions(state("running", 10), state("running", 30, 20, 137)) == [
        ("die", {"exitCode": "137"}), ("start", {})]


def test_oom_comes_before_die():
    assert transitions(state("running", 10), state("exited", 10, 20, 137, oom=True)) == [
        ("oom", {}), ("die", {"exitCode": "137"})]


def test_a_failed_start_is_a_die():
    assert transitions(state("created"), state("exited", 0, 20, 127)) == [
        ("die", {"exitCode": "127"})]


def test_restarting_is_no_event_and_pause_unpause():
    assert transitions(state("exited", 10, 20, 1), state("restarting", 10, 20, 1)) == []
    assert transitions(state("running", 10), state("paused", 10)) == [("pause", {})]
    assert transitions(state("paused", 10), state("running", 10)) == [("unpause", {})]
