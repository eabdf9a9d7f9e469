"""Throughput and latency of the simulated exchange over one real FIX 4.4 session.

The venue runs in a child process (its own GIL), started on a free port with temp dirs (journal fsync per
command, as in production config). One resting sell order is seeded, then N marketable NewOrderSingles
are pipelined with at most --window outstanding; latency is NewOrderSingle sent -> its fill
ExecutionReport (the last report of the order) received.

    .venv/bin/python bench/venue_fix_bench.py --orders 5000 --window 100
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "exchange"))

import quickfix as fix  # noqa: E402
from conftest import write_venue_config  # noqa: E402
from fixclient import FixClient, free_port, new_order  # noqa: E402


def run_venue(config_path: str, ready: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    from exchange.config import load_venue_config
    from exchange.venue import Venue
    venue = Venue(load_venue_config(config_path))
    venue.start()
    ready.set()
    stop.wait()
    venue.stop()


class BenchClient(FixClient):
    """Records the receive time of each order's fill without keeping every message."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sent_ns: dict[str, int] = {}
        self.filled_ns: dict[str, int] = {}
        self.outstanding = threading.Semaphore(1)
        self.done = threading.Event()
        self.expected = 0

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        now = time.perf_counter_ns()
        try:
            if message.getField(150) == "F" and message.getField(39) == "2":
                cl_ord_id = message.getField(11)
                if cl_ord_id in self.sent_ns and cl_ord_id not in self.filled_ns:
                    self.filled_ns[cl_ord_id] = now
                    self.outstanding.release()
                    if len(self.filled_ns) == self.expected:
                        self.done.set()
        except Exception:
            pass


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--window", type=int, default=100, help="max orders in flight")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="venue-bench-"))
    port = free_port()
    config_path = write_venue_config(work / "venue", port, ControlPort=-1)
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    process = multiprocessing.Process(target=run_venue, args=(str(config_path), ready, stop), daemon=True)
    process.start()
    if not ready.wait(30):
        raise SystemExit("venue did not start")
    client = BenchClient(port, work / "client")
    client.start(timeout_s=10)
    try:
        client.send("D", new_order("SEED", symbol="AAPL", side="2", qty=str(args.orders * 10), price="189.00",
                                   tif="1"))
        time.sleep(0.5)
        client.expected = args.orders
        client.outstanding = threading.Semaphore(args.window)
        started = time.perf_counter_ns()
        for number in range(args.orders):
            client.outstanding.acquire()
            cl_ord_id = f"B{number}"
            client.sent_ns[cl_ord_id] = time.perf_counter_ns()
            client.send("D", new_order(cl_ord_id, symbol="AAPL", side="1", qty="1", price="190.00"))
        if not client.done.wait(120):
            raise SystemExit(f"only {len(client.filled_ns)} of {args.orders} filled")
        elapsed_s = (time.perf_counter_ns() - started) / 1e9
    finally:
        client.stop()
        stop.set()
        process.join(10)
    latencies_us = sorted((client.filled_ns[c] - client.sent_ns[c]) / 1000 for c in client.filled_ns)
    print(f"orders={args.orders} window={args.window} elapsed_s={elapsed_s:.2f} "
          f"orders_per_s={args.orders / elapsed_s:.0f}")
    print("latency_us " + " ".join(f"{name}={percentile(latencies_us, q):.0f}" for name, q in
                                   (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))) + f" max={latencies_us[-1]:.0f}")


if __name__ == "__main__":
    main()
