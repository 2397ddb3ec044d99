"""Prometheus metrics: requests by route and status, latency, bytes served, recordings, jobs.

Under ``kallrec serve`` every worker writes to PROMETHEUS_MULTIPROC_DIR and a scrape of any worker
sums them all; in-process (tests, embedding) the metrics live in this object's own registry.

Requests are counted in plain dicts and handed to prometheus_client once a second (``flush``, and
before every scrape): in multiprocess mode each of its increments takes a lock, packs a float into
a shared file and asks the kernel for the pid, three times per request, which was ~10 µs of a
~150 µs request. So a scrape may see another worker's last second a second late.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Label values come from fixed sets only, so /metrics stays bounded whatever clients send: any
# other method (clients may invent them, 1 KB long) is counted as "other", and a path that
# matches no route as "unmatched" (the caller passes route templates, never raw paths).
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
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
        # Live calls' flushing (live/flush.py), per process: sum them across replicas.
        self.live_segments = Counter(
            "kallrec_live_segments_flushed", "Live audio segments sent to storage.", registry=own
        )
        self.live_segment_bytes = Counter(
            "kallrec_live_segment_bytes", "Bytes of live audio segments sent.", registry=own
        )
        self.live_flush_failures = Counter(
            "kallrec_live_flush_failures",
            "Live audio segments that could not be stored or indexed (retried every round).",
            registry=own,
        )
        self.live_spooled_bytes = Gauge(
            "kallrec_live_spooled_bytes",
            "Live audio waiting on local disk for storage.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self._own = own
        self._state = _StateCollector(recordings, jobs)
        if own is not None:
            own.register(self._state)
        # Not handed to prometheus_client yet: requests by labels; per route the latency sum
        # and the count per bucket (the last one +Inf); audio bytes.
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, list[float]] = {}
        self._bytes = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method if method in KNOWN_METHODS else "other", status)
        self._requests[key] = self._requests.get(key, 0) + 1
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        latency[0] += seconds
        # The first bucket whose bound is >= seconds, as Histogram.observe picks it.
        latency[1 + bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def count_bytes(self, sent: int) -> None:
        self._bytes += sent

    def flush(self) -> None:
        requests, self._requests = self._requests, {}
        latency, self._latency = self._latency, {}
        sent, self._bytes = self._bytes, 0
        for (route, method, status), count in requests.items():
            self.requests.labels(route, method, str(status)).inc(count)
        for route, (total, *buckets) in latency.items():
            # Histogram has no bulk observe: add to its sum and buckets as observe() does.
            child = self.latency.labels(route)
            child._sum.inc(total)
            for bucket, hits in zip(child._buckets, buckets, strict=True):
                if hits:
                    bucket.inc(hits)
        if sent:
            self.bytes_served.inc(sent)

    def render(self) -> bytes:
        self.flush()
        if self._own is not None:
            return generate_latest(self._own)
        registry = CollectorRegistry()
        # prometheus_client leaves this constructor unannotated (the class itself is typed).
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(self._state)
        return generate_latest(registry)


# -- SIP (kallrec.sip): written by the SIP process, summed into every worker's /metrics --------

SIP_METHODS = frozenset(("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "PRACK", "INFO"))
JITTER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)


class SipMetrics:
    """Calls, SIP requests and RTP of the SIP process. Updated as they happen: a packet is one
    increment, and the SIP process has no per-request budget to protect as the workers do."""

    def __init__(self) -> None:
        multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        self.registry = None if multiprocess else CollectorRegistry()
        own = self.registry
        self.calls_active = Gauge(
            "kallrec_sip_calls_active",
            "SIP calls being recorded now, by kind (sip, siprec).",
            ["kind"],
            registry=own,
            multiprocess_mode="livesum",
        )
        self.calls = Counter(
            "kallrec_sip_calls", "SIP calls answered, by kind.", ["kind"], registry=own
        )
        self.requests = Counter(
            "kallrec_sip_requests", "SIP requests received, by method.", ["method"], registry=own
        )
        self.invites = Counter(
            "kallrec_sip_invites",
            "INVITEs (re-INVITEs included) by the final status kallrec answered.",
            ["status"],
            registry=own,
        )
        self.rtp_packets = Counter(
            "kallrec_rtp_packets", "RTP packets received (duplicates included).", registry=own
        )
        self.rtp_lost = Counter(
            "kallrec_rtp_packets_lost",
            "RTP packets never received (recorded as silence).",
            registry=own,
        )
        self.rtp_late = Counter(
            "kallrec_rtp_packets_late",
            "RTP packets placed after their gap was given up on.",
            registry=own,
        )
        self.rtp_dropped = Counter(
            "kallrec_rtp_packets_dropped",
            "RTP datagrams not recorded, by reason (malformed, duplicate, codec, source, range).",
            ["reason"],
            registry=own,
        )
        self.jitter = Histogram(
            "kallrec_rtp_jitter_seconds",
            "Interarrival jitter (RFC 3550) of each RTP stream when it ends.",
            buckets=JITTER_BUCKETS,
            registry=own,
        )

    def answered(self, status: int) -> None:
        self.invites.labels(str(status)).inc()
