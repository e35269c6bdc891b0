"""`kran-agent`: serves this host's images and containers and keeps the node registered.

gRPC is not fork-safe, so the forkserver that forks every container's shim
is started first, before anything imports grpc (agent.app and what it
imports do); only then is the rest of the agent loaded. The agent is a
child subreaper: the shims, double-forked by the forkserver, become its
children, and the runtime reaps them when it deletes their containers.
"""

from __future__ import annotations

import sys

from agent import linux
from agent.runtime.forkserver import ForkServer


def main(argv: list[str] | None = None) -> int:
    """Start the forkserver, then run the agent; returns the exit status."""
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    try:
        forkserver = ForkServer.start()
    except OSError as exc:
        print(f"kran-agent: cannot start the forkserver: {exc}", file=sys.stderr)
        return 1
    try:
        from agent import app  # noqa: PLC0415 - grpc may load only now
        return app.main(argv, forkserver)
    finally:
        forkserver.stop()


if __name__ == "__main__":
    sys.exit(main())
