"""Prometheus metrics: requests by route and status, latency, bytes served, recordings, jobs.

Under ``kallrec serve`` every worker writes to PROMETHEUS_MULTIPROC_DIR and a scrape of any worker
sums them all; in-process (tests, embedding) the metrics live in this object's own registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class _StateCollector(Collector):
    def __init__(
        self,
        recordings: Callable[[], dict[str, int]],
        jobs: Callable[[], dict[str, int]],
    ) -> None:
        self._recordings = recordings
        self._jobs = jobs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        recs = GaugeMetricFamily(
            "kallrec_recordings", "Recordings by status (deleted ones excluded).", labels=["status"]
        )
        for status in ("processing", "ready", "failed", "expired"):
            recs.add_metric([status], self._recordings().get(status, 0))
        yield recs
        jobs = GaugeMetricFamily("kallrec_jobs_waiting", "Queued background jobs.", labels=["kind"])
        for kind, count in sorted(self._jobs().items()):
            jobs.add_metric([kind], count)
        yield jobs


class Metrics:
    def __init__(
        self,
        recordings: Callable[[], dict[str, int]],
        jobs: Callable[[], dict[str, int]],
    ) -> None:
        self.multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        own = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "kallrec_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "kallrec_http_request_duration_seconds",
            "Time to the end of the response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.bytes_served = Counter(
            "kallrec_audio_bytes_served", "Audio bytes sent to clients.", registry=own
        )
        self._own = own
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._state = _StateCollector(recordings, jobs)
        if own is not None:
            own.register(self._state)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        # Resolving label children costs more than counting; keep them per label set.
        children = self._children.get((route, method, status))
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
            self._children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        if self._own is not None:
            return generate_latest(self._own)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self._state)
        return generate_latest(registry)
