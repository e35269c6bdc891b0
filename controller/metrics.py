"""The controller's own metrics (beside kran.metrics' RPC histograms)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NODES = Gauge("kran_nodes", "Nodes known to the controller, by status", ["status"])

ETCD_SECONDS = Histogram(
    "kran_etcd_request_seconds",
    "Time of a request to etcd, by store operation and outcome",
    ["operation", "outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# kran_containers{state} is each agent's own count; this one is what etcd records.
CONTAINERS = Gauge("kran_cluster_containers", "Containers recorded in the cluster, by status",
                   ["status"])

PLACEMENT_SECONDS = Histogram(
    "kran_placement_seconds",
    "Time to choose the node of a new container",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5),
)

PLACEMENTS = Counter("kran_placements_total",
                     "Containers the scheduler placed (or could not place), by outcome",
                     ["outcome"])
