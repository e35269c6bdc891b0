"""Both processes serve Prometheus metrics, and the values move."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.procs import wait_until


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """GET /metrics on 127.0.0.1:port as {(sample name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def rpc_count(samples: dict, method: str) -> float:
    """Calls of method (all codes) seen by the RPC latency histogram."""
    return sum(v for (name, labels), v in samples.items()
               if name == "kran_grpc_server_handling_seconds_count"
               and ("grpc_method", method) in labels)


def test_controller_metrics(cluster):
    samples = scrape(cluster.controller.metrics_port)
    assert value(samples, "kran_up", component="controller") == 1
    wait_until(lambda: value(scrape(cluster.controller.metrics_port),
                             "kran_nodes", status="ready") == 1,
               timeout=15, what="kran_nodes{status=ready} 1")

    before = rpc_count(scrape(cluster.controller.metrics_port), "/kran.api.v1.Nodes/List")
    cluster.ok("node", "ls")
    after = scrape(cluster.controller.metrics_port)
    assert rpc_count(after, "/kran.api.v1.Nodes/List") == before + 1
    assert value(after, "kran_grpc_server_handling_seconds_bucket",
                 grpc_method="/kran.api.v1.Nodes/List", grpc_code="OK", le="+Inf") >= 1


def test_agent_metrics_move_with_an_import(cluster, hello_tar):
    port = cluster.agent.metrics_port
    samples = scrape(port)
    assert value(samples, "kran_up", component="agent") == 1
    images = wait_until(lambda: value(scrape(port), "kran_images") is not None and scrape(port),
                        timeout=15, what="kran_images on the agent")
    count, size = value(images, "kran_images"), value(images, "kran_image_bytes")

    cluster.ok("import", str(hello_tar), "metrics-hello:1")
    moved = wait_until(lambda: (s := scrape(port)) and value(s, "kran_images") == count + 1 and s,
                       timeout=15, what="kran_images to count the import")
    assert value(moved, "kran_image_bytes") > size
    # The agent served the Import the controller forwarded.
    assert rpc_count(moved, "/kran.api.v1.Images/Import") >= 1
    assert rpc_count(scrape(cluster.controller.metrics_port), "/kran.api.v1.Images/Import") >= 1

    cluster.ok("rmi", "metrics-hello:1")
    wait_until(lambda: value(scrape(port), "kran_images") == count, timeout=15,
               what="kran_images to count the removal")
