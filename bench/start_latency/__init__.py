"""How fast kran starts a container, and what an idle one costs, against runc and docker.

Run with `make bench` (or `python -m bench.start_latency --help`); the
figures and how to read them are in BENCHMARKS.md.
"""
