"""`python -m bench.start_latency`: run the phases, print a markdown report, save JSON.

Phases (all by default, `--phases` picks some):
  agent       kran's Runtime vs `runc run` of `true` (interleaved)
  idle        PSS of the shims of N idle `sleep 1000` containers, Runtime vs docker
  e2e         `kran run --rm busybox true` vs `docker run --rm busybox true` (interleaved)
  concurrent  N `run -d busybox sleep 300` at once, kran (SDK) vs docker
The whole run is time-boxed (--time-limit); every phase cleans up what it
made, also when it fails or the time is up.
"""

from __future__ import annotations

# The forkserver is started before anything imports grpc (it must never fork from a grpc process).
from agent.runtime.forkserver import ForkServer

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.limits import TimeUp, busybox_tarball, start_time_limit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("agent", "idle", "e2e", "concurrent")



def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.start_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset of " + ",".join(PHASES))
    p.add_argument("--runs", type=int, default=50, help="measured runs per side, agent level (default 50)")
    p.add_argument("--e2e-runs", type=int, default=50, help="measured runs per side, end to end (default 50)")
    p.add_argument("--idle", type=int, default=50, help="idle containers for the memory figures (default 50)")
    p.add_argument("--concurrent", type=int, default=200, help="containers started at once (default 200)")
    p.add_argument("--images-dir", type=Path, default=ROOT / "out/images",
                   help="where busybox.tar was built (make images)")
    p.add_argument("--no-docker", action="store_true", help="measure kran only")
    p.add_argument("--time-limit", type=int, default=2400, help="seconds for the whole run (default 2400)")
    p.add_argument("--results", type=Path, default=ROOT / "out/bench/start_latency.json",
                   help="where to write the figures as JSON")
    args = p.parse_args(argv)
    args.phases = [x for x in args.phases.split(",") if x]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        p.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 when every phase ran, 1 otherwise."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tarball = busybox_tarball(args.images_dir, "it mounts overlays and creates cgroups")
    if tarball is None:
        return 1
    start_time_limit(args.time_limit)
    forkserver = ForkServer.start()
    from bench.start_latency import phases  # noqa: PLC0415 - grpc may load from here on

    workdir = Path(tempfile.mkdtemp(prefix="kran-bench-"))
    results: dict = {"machine": phases.machine()}
    report: list[str] = []
    failed = False
    try:
        with phases.Bench(workdir, forkserver, tarball, docker=not args.no_docker) as bench:
            for name in args.phases:
                print(f"== {name}", file=sys.stderr, flush=True)
                try:
                    text, figures = bench.run(name, args)
                except TimeUp:
                    raise
                except Exception as exc:  # noqa: BLE001 - one failed phase does not stop the others
                    traceback.print_exc()
                    failed = True
                    text, figures = f"### {name}\n\nfailed: {type(exc).__name__}: {exc}\n", {"error": str(exc)}
                report.append(text)
                results[name] = figures
                print(text, flush=True)
    except TimeUp as exc:
        failed = True
        print(f"stopped: {exc}", file=sys.stderr)
        results["stopped"] = str(exc)
    finally:
        signal.alarm(0)
        forkserver.stop()
        phases.remove_tree(workdir)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    print(f"\nfigures saved in {args.results}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
