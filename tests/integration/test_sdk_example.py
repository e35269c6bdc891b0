"""examples/sdk_example.py, the SDK example the README shows, runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.procs import ROOT


def test_sdk_example(cluster):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "sdk_example.py")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KRAN_HOST": cluster.address})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(rf"^node {cluster.hostname} \(\w+\): ready$", out, re.MULTILINE), out
    match = re.search(r"^imported (sha256:[0-9a-f]{64}) as \['sdk-example:latest'\] on "
                      rf"{cluster.hostname}$", out, re.MULTILINE)
    assert match, out
    image_id = match.group(1)
    assert re.search(rf"^listed (sha256:)?{image_id[7:17]}[0-9a-f]* \['sdk-example:latest'\] "
                     r"\d+ bytes$", out, re.MULTILINE), out
    assert "{'Untagged': 'sdk-example:latest'}" in out
    assert f"{{'Deleted': '{image_id}'}}" in out
    # The example cleans up after itself: the image is gone again.
    assert "sdk-example" not in cluster.ok("images")
