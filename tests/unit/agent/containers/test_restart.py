"""Restart policies and Docker's backoff between restarts."""

from __future__ import annotations

import pytest

from agent.containers import restart
from agent.containers.restart import Backoff, should_restart
from kran import errors
from kran.api.v1 import containers_pb2


def policy(name: str, retries: int = 0) -> containers_pb2.RestartPolicy:
    return containers_pb2.RestartPolicy(name=name, maximum_retry_count=retries)


@pytest.mark.parametrize("name, code, restarts, by_user, expected", [
    ("no", 1, 0, False, False),
    ("", 1, 0, False, False),
    ("always", 0, 0, False, True),
    ("always", 1, 50, False, True),
    ("always", 1, 0, True, False),
    ("unless-stopped", 0, 3, False, True),
    ("unless-stopped", 0, 0, True, False),
    ("on-failure", 0, 0, False, False),
    ("on-failure", 3, 0, False, True),
    ("on-failure", 3, 1000, False, True),
    ("on-failure", 137, 0, True, False),
])
def test_should_restart(name, code, restarts, by_user, expected) -> None:
    assert should_restart(policy(name), code, restarts, by_user) is expected


def test_on_failure_counts_its_retries() -> None:
    decisions = [should_restart(policy("on-failure", 2), 1, n, False) for n in range(4)]
    assert decisions == [True, True, False, False]


def test_validate() -> None:
    for good in (policy("no"), policy(""), policy("always"), policy("on-failure", 5), policy("unless-stopped")):
        restart.validate(good)
    for bad in (policy("never"), policy("always", 1), policy("on-failure", -1)):
        with pytest.raises(errors.InvalidArgument, match="^invalid restart policy"):
            restart.validate(bad)


def test_backoff_doubles_up_to_a_minute() -> None:
    backoff = Backoff()
    delays = [backoff.next(0.5) for _ in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == restart.MAX_DELAY and max(delays) == 60.0
    assert all(b >= a for a, b in zip(delays, delays[1:]))


def test_a_long_run_resets_the_backoff() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.next(1.0)
    assert backoff.next(10.0) == 0.1
    assert backoff.next(9.9) == 0.2
