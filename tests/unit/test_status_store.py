"""The status store writes a credential's status at most once a second."""

from __future__ import annotations

from typing import Any

import pytest
from fakeclock import FakeClock

from regcred.config import OperatorConfig
from regcred.controller.caches import Caches, ChangeHandlers
from regcred.controller.status import MIN_STATUS_INTERVAL_SECONDS, StatusStore
from regcred.kube.projections import credential_record
from regcred.metrics import Metrics
from regcred.planning.plan import Outcome, OutcomeKind
from regcred.planning.sources import ResolvedContent


class StatusPatches:
    """Stands in for KubeClient: answers status patches, records them; posts no Events."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if path.endswith("/status"):
            self.patches.append(kwargs["body"])
            version = str(len(self.patches))
            return {"metadata": {"name": "acme", "uid": "u", "resourceVersion": version}, **kwargs["body"]}
        return {}


def test_a_credential_status_is_written_at_most_once_per_interval():
    client: Any = StatusPatches()
    clock = FakeClock()
    store = StatusStore(client, Caches(client, OperatorConfig(), ChangeHandlers()), Metrics(), lambda: None, clock)
    record = credential_record({
        "metadata": {"name": "acme", "uid": "u"},
        "spec": {"registries": [{"server": "r.example", "passwordSecretRef": {"name": "pw"}}]},
    })
    content = ResolvedContent(docker_config=b"{}", content_hash="sha256:x")
    assert store.write_delay("acme") == 0.0
    store.record_outcome("acme", "ns-1", Outcome(OutcomeKind.SYNCED))
    store.write(record, content, None)
    assert len(client.patches) == 1
    assert store.write_delay("acme") == MIN_STATUS_INTERVAL_SECONDS
    clock.advance(0.4)
    assert store.write_delay("acme") == pytest.approx(MIN_STATUS_INTERVAL_SECONDS - 0.4)
    clock.advance(0.6)
    assert store.write_delay("acme") == 0.0
    store.forget("acme")
    assert store.write_delay("acme") == 0.0
