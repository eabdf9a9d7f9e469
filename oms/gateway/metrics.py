"""Prometheus metrics of one gateway: outcomes, commit latency, session state, queue depth.

Each Gateway has its own registry (a restart in the same process must not register twice); `serve(port)`
exposes it on loopback when [GATEWAY] MetricsPort is set.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.outcomes = Counter("oms_gateway_outcomes", "Requests and venue reports by outcome or denial reason",
                                ["outcome"], registry=self.registry)
        self.batch_seconds = Histogram("oms_gateway_batch_seconds", "Time to run and commit one batch of commands",
                                       registry=self.registry,
                                       buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        self.batch_size = Histogram("oms_gateway_batch_size", "Commands per committed batch", registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.logged_on = Gauge("oms_gateway_session_logged_on", "1 while the FIX session is logged on",
                               ["session", "role"], registry=self.registry)
        self.queue_depth = Gauge("oms_gateway_queue_depth", "Items waiting for the gateway worker",
                                 registry=self.registry)
        self.recovering = Gauge("oms_gateway_venue_recovering", "1 while recovery after a venue logon runs",
                                registry=self.registry)
        self.unresolved = Gauge("oms_gateway_unresolved_orders",
                                "Orders whose outcome at the venue stayed unknown after recovery (reservations held)",
                                registry=self.registry)
        self._server: Any = None

    def serve(self, port: int) -> int:
        """Serve /metrics on 127.0.0.1:`port` (0: any free port); returns the port."""
        self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
