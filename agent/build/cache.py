"""The build cache's keys: what makes a step the same step as in an earlier build.

As Docker's classic builder decides: a step is reused when it starts from
the same parent (the id of the image config the previous step made, or
the base image's id) and its history line is the same. That line holds
what the step depends on: the instruction after variable expansion, for
RUN the build args in effect (`|2 A=1 B=2 /bin/sh -c make`), for COPY and
ADD a checksum of the files copied (`COPY file:<sha256> in /app `), so a
changed file, argument or instruction changes the key and everything
after it runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

_VERSION = "kran-build-cache-v1"
SCRATCH = "scratch"  # the parent of the first step of a stage FROM scratch


def step_key(parent_id: str, created_by: str) -> str:
    """The cache key of a step (64 hex digits)."""
    return hashlib.sha256(f"{_VERSION}\n{parent_id or SCRATCH}\n{created_by}".encode()).hexdigest()


def run_created_by(args: list[str], build_args: Mapping[str, str]) -> str:
    """RUN's history line: the command, after `|N K=V ...` when build args are in effect (sorted)."""
    if not build_args:
        return " ".join(args)
    pairs = sorted(f"{k}={v}" for k, v in build_args.items())
    return " ".join([f"|{len(pairs)}", *pairs, *args])


def copy_created_by(keyword: str, kind: str, digest: str, dest: str, chown: str = "", chmod: str = "") -> str:
    """COPY's or ADD's history comment: `COPY [--chown=..] file:<digest> in <dest> ` (Docker's, with its blank)."""
    flags = "".join(f"--{name}={value} " for name, value in (("chown", chown), ("chmod", chmod)) if value)
    return f"{keyword} {flags}{kind}:{digest} in {dest} "
