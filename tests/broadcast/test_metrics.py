"""broadcast/metrics.py: the dispatcher's metrics, read back from their registry and over HTTP."""

import os
import subprocess
import sys
import urllib.request

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY

from broadcast import metrics
from broadcast.metrics import DispatcherMetrics
from tests.helpers import ROOT

NAMES = (
    "broadcast_deliveries_total",
    "broadcast_delivery_latency_seconds",
    "broadcast_in_flight",
    "broadcast_breaker_open",
    "broadcast_rate_limited_seconds_total",
)


@pytest.fixture
def dispatcher_metrics() -> DispatcherMetrics:
    return DispatcherMetrics()


def value(m: DispatcherMetrics, name: str, **labels) -> float | None:
    return m.registry.get_sample_value(name, labels)


D = "counter-server"  # a destination's name, every series' label


def test_every_series_of_a_new_destination_starts_at_zero(dispatcher_metrics):
    assert value(dispatcher_metrics, "broadcast_in_flight", destination=D) is None
    dispatcher_metrics.add_destination(D)
    for result in ("delivered", "retry", "failed"):
        assert value(dispatcher_metrics, "broadcast_deliveries_total", destination=D,
                     result=result) == 0  # fmt: skip
    assert value(dispatcher_metrics, "broadcast_in_flight", destination=D) == 0
    assert value(dispatcher_metrics, "broadcast_breaker_open", destination=D) == 0
    assert value(dispatcher_metrics, "broadcast_rate_limited_seconds_total", destination=D) == 0
    assert value(dispatcher_metrics, "broadcast_delivery_latency_seconds_count",
                 destination=D) == 0  # fmt: skip


def test_rounds_add_up_by_destination_and_result(dispatcher_metrics):
    dispatcher_metrics.record_round(D, delivered=5, retried=2, failed=1, latencies=[0.004] * 5)
    dispatcher_metrics.record_round(D, delivered=3, latencies=[0.2, 0.3, 7.0])
    dispatcher_metrics.record_round("planning", delivered=1, latencies=[0.1])

    def deliveries(destination: str, result: str) -> float | None:
        return value(dispatcher_metrics, "broadcast_deliveries_total", destination=destination,
                     result=result)  # fmt: skip

    assert (deliveries(D, "delivered"), deliveries(D, "retry"), deliveries(D, "failed")) == (
        8,
        2,
        1,
    )
    assert deliveries("planning", "delivered") == 1
    assert value(dispatcher_metrics, "broadcast_delivery_latency_seconds_count",
                 destination="planning") == 1  # fmt: skip


def test_latencies_fill_the_histogram(dispatcher_metrics):
    dispatcher_metrics.record_round(D, delivered=4, latencies=[0.004, 0.02, 0.02, 7.0])
    name = "broadcast_delivery_latency_seconds"
    assert value(dispatcher_metrics, f"{name}_count", destination=D) == 4
    assert value(dispatcher_metrics, f"{name}_sum", destination=D) == pytest.approx(7.044)
    assert value(dispatcher_metrics, f"{name}_bucket", destination=D, le="0.005") == 1
    assert value(dispatcher_metrics, f"{name}_bucket", destination=D, le="0.025") == 3
    assert value(dispatcher_metrics, f"{name}_bucket", destination=D, le="5.0") == 3
    assert value(dispatcher_metrics, f"{name}_bucket", destination=D, le="10.0") == 4


def test_a_clock_step_back_is_not_a_negative_latency(dispatcher_metrics):
    dispatcher_metrics.record_round(D, delivered=1, latencies=[-0.5])
    name = "broadcast_delivery_latency_seconds"
    assert value(dispatcher_metrics, f"{name}_sum", destination=D) == 0
    assert value(dispatcher_metrics, f"{name}_bucket", destination=D, le="0.005") == 1


def test_gauges_follow_the_latest_value_per_destination(dispatcher_metrics):
    dispatcher_metrics.set_in_flight(D, 17)
    dispatcher_metrics.set_breaker_open(D, True)
    dispatcher_metrics.set_in_flight("planning", 3)
    assert value(dispatcher_metrics, "broadcast_in_flight", destination=D) == 17
    assert value(dispatcher_metrics, "broadcast_breaker_open", destination=D) == 1
    assert value(dispatcher_metrics, "broadcast_in_flight", destination="planning") == 3
    dispatcher_metrics.set_in_flight(D, 0)
    dispatcher_metrics.set_breaker_open(D, False)
    assert value(dispatcher_metrics, "broadcast_in_flight", destination=D) == 0
    assert value(dispatcher_metrics, "broadcast_breaker_open", destination=D) == 0


def test_a_forgotten_destination_has_no_series_left(dispatcher_metrics):
    dispatcher_metrics.add_destination(D)
    dispatcher_metrics.set_breaker_open(D, True)
    dispatcher_metrics.add_destination("planning")
    dispatcher_metrics.forget_destination(D)
    dispatcher_metrics.forget_destination("never-seen")  # nothing to drop: no error
    assert value(dispatcher_metrics, "broadcast_breaker_open", destination=D) is None
    assert value(dispatcher_metrics, "broadcast_deliveries_total", destination=D,
                 result="delivered") is None  # fmt: skip
    assert value(dispatcher_metrics, "broadcast_breaker_open", destination="planning") == 0


def test_rate_limited_time_accumulates(dispatcher_metrics):
    dispatcher_metrics.add_rate_limited(D, 0.25)
    dispatcher_metrics.add_rate_limited(D, 1.5)
    dispatcher_metrics.add_rate_limited(D, 0)
    name = "broadcast_rate_limited_seconds_total"
    assert value(dispatcher_metrics, name, destination=D) == 1.75


def test_the_registry_is_the_dispatchers_own(dispatcher_metrics):
    dispatcher_metrics.set_in_flight(D, 3)
    assert REGISTRY.get_sample_value("broadcast_in_flight", {"destination": D}) is None
    assert (
        DispatcherMetrics().registry.get_sample_value("broadcast_in_flight", {"destination": D})
        is None
    )


def test_module_functions_use_the_process_metrics():
    def failed() -> float:
        sample = metrics.default().registry.get_sample_value(
            "broadcast_deliveries_total", {"destination": D, "result": "failed"}
        )
        return sample or 0.0

    before = failed()
    metrics.record_round(D, failed=2)
    metrics.set_in_flight(D, 9)
    assert failed() - before == 2
    assert (
        metrics.default().registry.get_sample_value("broadcast_in_flight", {"destination": D}) == 9
    )


def test_the_http_server_answers_with_every_name(dispatcher_metrics):
    dispatcher_metrics.add_destination(D)
    dispatcher_metrics.record_round(D, delivered=2, retried=1, latencies=[0.01, 0.02])
    dispatcher_metrics.set_breaker_open(D, True)
    server = dispatcher_metrics.serve(0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    for name in NAMES:
        assert f"\n{name}" in text, name
    assert f'broadcast_deliveries_total{{destination="{D}",result="delivered"}} 2.0' in text
    assert f'broadcast_deliveries_total{{destination="{D}",result="retry"}} 1.0' in text
    assert f'broadcast_breaker_open{{destination="{D}"}} 1.0' in text
    assert f'broadcast_delivery_latency_seconds_count{{destination="{D}"}} 2.0' in text


def test_serving_refuses_the_web_multiprocess_directory(dispatcher_metrics, monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ImproperlyConfigured, match="PROMETHEUS_MULTIPROC_DIR"):
        dispatcher_metrics.serve(0)


def test_serve_from_settings_serves_nothing_without_a_port(settings):
    settings.BROADCAST = {**settings.BROADCAST, "METRICS_PORT": None}
    assert metrics.serve_from_settings() is None


def test_serve_from_settings_binds_the_configured_address(settings):
    settings.BROADCAST = {**settings.BROADCAST, "METRICS_PORT": 0, "METRICS_ADDRESS": "127.0.0.1"}
    server = metrics.serve_from_settings()
    try:
        assert server.server_address[0] == "127.0.0.1"
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"broadcast_in_flight" in response.read()
    finally:
        server.shutdown()
        server.server_close()


def settings_in_a_process(**env: str) -> subprocess.CompletedProcess:
    """Print settings.BROADCAST's metrics entries as the dispatcher would read them."""
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.BROADCAST['METRICS_PORT'], settings.BROADCAST['METRICS_ADDRESS'])"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    environment |= {"DJANGO_SETTINGS_MODULE": "railfleet.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_metrics_settings_default_to_no_server():
    assert settings_in_a_process().stdout.split() == ["None", "127.0.0.1"]


def test_metrics_settings_come_from_the_environment():
    result = settings_in_a_process(BROADCAST_METRICS_PORT="9101", BROADCAST_METRICS_ADDRESS="::1")
    assert result.stdout.split() == ["9101", "::1"]


def test_a_bad_metrics_port_is_refused_naming_the_variable():
    result = settings_in_a_process(BROADCAST_METRICS_PORT="ninety")
    assert result.returncode != 0
    assert "BROADCAST_METRICS_PORT must be a whole number" in result.stderr
