"""The bench's build context: a multi-stage Dockerfile of about ten steps on busybox, and its files."""

from __future__ import annotations

from pathlib import Path

DOCKERFILE = """\
FROM busybox AS builder
WORKDIR /src
COPY src/ ./
RUN mkdir -p /out && for f in *.txt; do tr a-z A-Z < "$f" > "/out/$f"; done
RUN echo "built" > /out/VERSION
FROM busybox
ENV APP_HOME=/app
WORKDIR $APP_HOME
COPY --from=builder /out/ ./
COPY config.ini ./
RUN ls > manifest.txt
CMD ["cat", "VERSION"]
"""
STEPS = 12


def write_project(root: Path) -> Path:
    """Write the context under root (made here) and return it."""
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "config.ini").write_text("[app]\nname = bench\n")
    for n in range(20):
        (root / "src" / f"part{n:02d}.txt").write_text(f"part {n}\n" * 200)
    (root / ".dockerignore").write_text("*.tmp\n")
    return root
