"""Prometheus metrics, in a registry of their own per controller (no global state at import).

Label values are credential names, namespaces' counts, verbs and results:
never anything derived from secret content.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

NAMESPACE_STATES = ("matched", "synced", "failed", "conflicted")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "regcred_reconciles", "Reconcile work items processed, by kind and result.",
            ["kind", "result"], registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "regcred_reconcile_duration_seconds", "Time spent on one work item, by kind.",
            ["kind"], registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.namespaces = Gauge(
            "regcred_namespaces", "Namespaces per credential, by state.",
            ["credential", "state"], registry=self.registry,
        )
        self.managed_secrets = Gauge(
            "regcred_managed_secrets", "Replica Secrets managed by the operator.", registry=self.registry
        )
        self.api_errors = Counter(
            "regcred_api_errors", "Failed API requests, by verb.", ["verb"], registry=self.registry
        )
        self.writes = Counter(
            "regcred_writes", "Write requests sent, by resource and verb.",
            ["resource", "verb"], registry=self.registry,
        )
        self.leader = Gauge(
            "regcred_leader", "1 while this instance holds the leader Lease (or runs without election).",
            registry=self.registry,
        )
        self.restarted_pods = Counter(
            "regcred_restarted_pods",
            "Stuck Pods deleted so that their controllers recreate them with the pull secret "
            "(spec.restartStuckPods), by credential.",
            ["credential"], registry=self.registry,
        )
        self.last_sync = Gauge(
            "regcred_last_successful_sync_timestamp_seconds",
            "When a credential's status last reported every matched namespace synced.",
            ["credential"], registry=self.registry,
        )

    def set_namespace_counts(self, credential: str, counts: Mapping[str, int]) -> None:
        for state in NAMESPACE_STATES:
            self.namespaces.labels(credential=credential, state=state).set(counts.get(state, 0))

    def forget_credential(self, credential: str) -> None:
        for state in NAMESPACE_STATES:
            try:
                self.namespaces.remove(credential, state)
            except KeyError:
                pass
        for per_credential in (self.last_sync, self.restarted_pods):
            try:
                per_credential.remove(credential)
            except KeyError:
                pass
