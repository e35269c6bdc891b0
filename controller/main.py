"""`kran-controller`: the cluster's API server."""

from __future__ import annotations

import asyncio
import logging
import sys

from controller import app, config
from controller.embedded_etcd import EtcdStartError
from kran import errors, logs

log = logging.getLogger("controller")


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the controller until it is stopped; returns the exit status."""
    try:
        cfg = config.parse(argv)
    except errors.KranError as exc:
        print(f"kran-controller: {exc}", file=sys.stderr)
        return 2
    logs.setup(cfg.log_level)
    try:
        asyncio.run(app.run(cfg))
    except (EtcdStartError, OSError, errors.KranError) as exc:
        log.error(f"cannot start the controller: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
