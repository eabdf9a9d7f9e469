"""Every speed target of the open issues, measured in rounds, with how many runs met each.

Usage: python bench/targets.py [--rounds N] [--skip engine,service,rest] [--pg-url URL]

This machine's speed moves by a third within an hour (other tenants of the host), so one run says little
about whether a target is met *reliably*. Each round runs the three target benchmarks one after the other,
with their default commands, and notes how fast the machine was just before (the time of a 5,000,000-
iteration empty Python loop, the figure the ``RESULTS-*.md`` files quote). At the end a Markdown table gives,
per target, every run's figure, the median and how many runs met it.

* engine (issue 3): ``engine_bench.py --runs 5``, the median of its five runs; target >= 500,000 ops/s.
* service (issue 2): ``service_bench.py --backend both --orders 10000 --batch 500 --mode batch
  --processes 2``; targets >= 5,000 orders/s on SQLite (one process: SQLite has one writer) and >= 3,000/s
  on PostgreSQL (two gateway processes, DESIGN.md's scale-out; one process is shown too).
* rest (issue 5): ``rest_bench.py --seconds 10 --rate 300 --workers 1``; targets >= 1,000 placements/s and
  p99 <= 20 ms at 300 requests/s. Its disk probe's stalls (fdatasync over 50 ms) are counted beside.

A benchmark that fails or prints no figure is reported as such and counts as a miss.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TIMEOUT_S = 600


@dataclass(frozen=True)
class Target:
    """One figure a benchmark prints, and the bound an issue sets on it."""

    name: str
    issue: int
    pattern: str  # a regex whose first group is the figure (commas allowed)
    at_least: float | None = None
    at_most: float | None = None
    count: bool = False  # shown as a whole number

    def met(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.at_least is not None and value < self.at_least:
            return False
        return self.at_most is None or value <= self.at_most

    @property
    def checked(self) -> bool:
        """False for a figure shown beside the targets, not held to a bound."""
        return self.at_least is not None or self.at_most is not None

    def bound(self) -> str:
        if self.at_least is not None:
            return f">= {self.at_least:,.0f}"
        if self.at_most is not None:
            return f"<= {self.at_most:,.0f}"
        return "(shown)"


@dataclass(frozen=True)
class Benchmark:
    name: str
    arguments: list[str]
    targets: list[Target]


BENCHMARKS = [
    Benchmark("engine", ["engine_bench.py", "--runs", "5"], [
        Target("engine ops/s (median of 5)", 3, r"^median: ([\d,]+) ops/s wall-clock", at_least=500_000),
    ]),
    Benchmark("service", ["service_bench.py", "--backend", "both", "--orders", "10000", "--batch", "500",
                          "--mode", "batch", "--processes", "2"], [
        Target("SQLite orders/s", 2, r"^\[sqlite\] batch .* = ([\d,]+) orders/s", at_least=5_000),
        Target("PostgreSQL orders/s, two processes", 2, r"^\[postgresql\] procs .* = ([\d,]+) orders/s",
               at_least=3_000),
        Target("PostgreSQL orders/s, one process", 2, r"^\[postgresql\] batch .* = ([\d,]+) orders/s"),
    ]),
    Benchmark("rest", ["rest_bench.py", "--seconds", "10", "--rate", "300", "--workers", "1"], [
        Target("REST placements/s", 5, r"^throughput: ([\d,]+) placements/s", at_least=1_000),
        Target("REST p99 ms at 300/s", 5, r"^latency at 300 req/s.* p99 ([\d.]+) ms", at_most=20),
        Target("REST disk stalls (fdatasync > 50 ms)", 5, r"^disk probe .*, (\d+) over 50 ms", count=True),
    ]),
]  # fmt: skip


@dataclass
class Round:
    started: datetime
    loop_s: float
    load: float
    figures: dict[str, float | None] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def python_loop_seconds() -> float:
    """How fast the machine is right now: the RESULTS files' 5,000,000-iteration loop, run as they ran it
    (``python -c``: at module level, where the loop variable is a global; in a function it runs twice as fast)."""
    code = compile("for _ in range(5_000_000):\n    pass\n", "<speed probe>", "exec")
    start = time.perf_counter()
    exec(code, {})  # noqa: S102 - a fixed loop, for timing
    return time.perf_counter() - start


def figure(output: str, pattern: str) -> float | None:
    found = re.search(pattern, output, re.MULTILINE)
    return float(found.group(1).replace(",", "")) if found else None


def run_benchmark(benchmark: Benchmark, extra: list[str]) -> tuple[str, str | None]:
    """(its standard output, why it failed or None)."""
    command = [sys.executable, str(BENCH / benchmark.arguments[0]), *benchmark.arguments[1:], *extra]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return "", f"{benchmark.name}: no result within {TIMEOUT_S} s"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return done.stdout, f"{benchmark.name}: exit code {done.returncode}: {tail}"
    return done.stdout, None


def run_round(benchmarks: list[Benchmark], pg_url: str | None) -> Round:
    this = Round(datetime.now(UTC), python_loop_seconds(), os.getloadavg()[0])
    for benchmark in benchmarks:
        extra = ["--pg-url", pg_url] if pg_url and benchmark.name != "engine" else []
        output, failure = run_benchmark(benchmark, extra)
        if failure:
            this.failures.append(failure)
        for target in benchmark.targets:
            this.figures[target.name] = figure(output, target.pattern)
    return this


def number(value: float | None, count: bool = False) -> str:
    if value is None:
        return "none"
    if count:
        return str(int(value))
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def summary(rounds: list[Round], benchmarks: list[Benchmark]) -> str:
    """The Markdown table: each target's runs, median, and how many met it."""
    lines = [
        "| issue | figure | target | runs, in order | median | met |",
        "|---|---|---|---|---|---|",
    ]
    for benchmark in benchmarks:
        for target in benchmark.targets:
            values = [r.figures.get(target.name) for r in rounds]
            present = [v for v in values if v is not None]
            median = number(statistics.median(present), target.count) if present else "none"
            met = f"{sum(target.met(v) for v in values)} of {len(values)}" if target.checked else ""
            runs = ", ".join(number(v, target.count) for v in values)
            lines.append(f"| {target.issue} | {target.name} | {target.bound()} | {runs} | {median} | {met} |")
    speeds = ", ".join(f"{r.started:%H:%M} {r.loop_s:.2f} s (load {r.load:.1f})" for r in rounds)
    lines.append("")
    lines.append(f"Rounds started at (UTC), with the 5,000,000-iteration loop's time: {speeds}.")
    for r in rounds:
        lines.extend(f"- {r.started:%H:%M} {failure}" for failure in r.failures)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated: engine, service, rest")
    parser.add_argument("--pg-url", default=None, help="passed to the service and REST benchmarks")
    args = parser.parse_args()
    skipped = {name.strip() for name in args.skip.split(",") if name.strip()}
    unknown = skipped - {b.name for b in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s) to skip: {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    benchmarks = [b for b in BENCHMARKS if b.name not in skipped]
    counts = {target.name: target.count for benchmark in benchmarks for target in benchmark.targets}
    rounds: list[Round] = []
    for index in range(args.rounds):
        rounds.append(run_round(benchmarks, args.pg_url))
        done = rounds[-1]
        print(f"round {index + 1} of {args.rounds} ({done.started:%H:%M:%S} UTC, loop {done.loop_s:.2f} s): "
              + ", ".join(f"{name} {number(value, counts[name])}" for name, value in done.figures.items()),
              flush=True)
        for failure in done.failures:
            print(f"  failed: {failure}", flush=True)
    print()
    print(summary(rounds, benchmarks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
