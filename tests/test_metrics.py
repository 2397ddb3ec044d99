from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from kallrec.metrics import LATENCY_BUCKETS, Metrics

# On and between bucket bounds, below the first and past the last.
SECONDS = [0.0, 0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.05, 0.5, 2.5, 9.9, 10.0, 11.0, 60.0]


def _metrics() -> Metrics:
    return Metrics(lambda: {}, lambda: {})


def _lines(text: bytes, name: str) -> list[str]:
    return [
        line
        for line in text.decode().splitlines()
        if line.startswith(name) and not line.startswith(f"{name}_created")
    ]


def test_buffered_latencies_render_as_histogram_observe_would() -> None:
    metrics = _metrics()
    for seconds in SECONDS:
        metrics.observe("/r", "GET", 200, seconds)
    reference = CollectorRegistry()
    expected = Histogram(
        "kallrec_http_request_duration_seconds",
        "",
        ["route"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    for seconds in SECONDS:
        expected.labels("/r").observe(seconds)
    name = "kallrec_http_request_duration_seconds"
    assert _lines(metrics.render(), name) == _lines(generate_latest(reference), name)


def test_counts_reach_the_scrape_whether_flushed_on_time_or_by_the_scrape() -> None:
    metrics = _metrics()
    metrics.observe("/r", "GET", 206, 0.001)
    metrics.count_bytes(100)
    metrics.flush()  # what the server does every second
    metrics.observe("/r", "GET", 206, 0.001)
    metrics.count_bytes(50)
    text = metrics.render().decode()
    assert 'kallrec_http_requests_total{method="GET",route="/r",status="206"} 2.0' in text
    assert "kallrec_audio_bytes_served_total 150.0" in text
    assert metrics.render().decode().count("150.0") == text.count("150.0")  # not counted twice
