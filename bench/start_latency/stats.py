"""Summaries of timing samples and the markdown the report prints."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class Summary:
    """Median, 90th percentile, min and max of one series of samples (seconds or bytes)."""

    n: int
    median: float
    p90: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: list[float]) -> "Summary":
        """The summary of samples (at least one)."""
        ordered = sorted(samples)
        # Nearest-rank p90: the smallest sample with at least 90% of samples at or below it.
        rank = max(1, -(-9 * len(ordered) // 10))
        return cls(len(ordered), statistics.median(ordered), ordered[rank - 1], ordered[0], ordered[-1])

    def as_dict(self) -> dict[str, float]:
        """For the JSON results file."""
        return {"n": self.n, "median": self.median, "p90": self.p90, "min": self.low, "max": self.high}


def ms(seconds: float) -> str:
    """Seconds as milliseconds for a table cell."""
    return f"{seconds * 1000:.1f} ms"


def mib(size: float) -> str:
    """Bytes as MiB for a table cell."""
    return f"{size / (1 << 20):.2f} MiB"


def ratio(ours: float, theirs: float) -> str:
    """ours/theirs as "0.42x", or "n/a" when theirs is zero."""
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def latency_table(rows: list[tuple[str, Summary]]) -> str:
    """A markdown table of latency summaries, one row per measured thing."""
    lines = ["| what | n | median | p90 | min | max |", "|---|---|---|---|---|---|"]
    for name, s in rows:
        lines.append(f"| {name} | {s.n} | {ms(s.median)} | {ms(s.p90)} | {ms(s.low)} | {ms(s.high)} |")
    return "\n".join(lines)
