"""Restart policies and Docker's restart backoff.

no | on-failure[:N] | always | unless-stopped, decided when a container's task
exits: a container a user stopped or killed is never restarted; on-failure
restarts on a non-zero exit while fewer than N restarts were made (N = 0:
no limit). The delay before a restart starts at 100 ms and doubles at each
restart up to one minute; a task that ran 10 s or more starts the count
over (moby's restartmanager).
"""

from __future__ import annotations

from kran import errors
from kran.api.v1 import containers_pb2

POLICIES = ("no", "always", "on-failure", "unless-stopped")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def validate(policy: containers_pb2.RestartPolicy) -> None:
    """InvalidArgument, with Docker's message, for a policy Docker refuses."""
    name = policy.name or "no"
    if name not in POLICIES:
        raise errors.InvalidArgument(
            f"invalid restart policy: unknown policy '{name}'; "
            "use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
    if policy.maximum_retry_count < 0:
        raise errors.InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if policy.maximum_retry_count and name != "on-failure":
        raise errors.InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'")


def should_restart(policy: containers_pb2.RestartPolicy, exit_code: int, restarts: int,
                   stopped_by_user: bool) -> bool:
    """Whether a task that exited with exit_code is restarted, after `restarts` restarts so far."""
    if stopped_by_user:
        return False
    name = policy.name or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = policy.maximum_retry_count
        return exit_code != 0 and (limit == 0 or restarts < limit)
    return False


class Backoff:
    """The delays between restarts: 100 ms doubling to 1 min, reset by a run of 10 s or more."""

    def __init__(self) -> None:
        self.delay = 0.0

    def next(self, ran_for: float) -> float:
        """The delay before the next restart, for a task that ran ran_for seconds."""
        if ran_for >= RESET_AFTER:
            self.delay = 0.0
        self.delay = FIRST_DELAY if self.delay == 0 else min(self.delay * 2, MAX_DELAY)
        return self.delay
