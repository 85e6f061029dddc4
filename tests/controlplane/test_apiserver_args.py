"""Extra kube-apiserver flags reach the process: here, an audit log that records requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regcred_dev.controlplane import LocalControlPlane

pytestmark = pytest.mark.e2e

AUDIT_EVERYTHING = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


def test_extra_apiserver_args_enable_an_audit_log(control_plane_bin: Path, tmp_path: Path) -> None:
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text(AUDIT_EVERYTHING)
    audit_log = tmp_path / "audit.log"
    args = [f"--audit-policy-file={policy}", f"--audit-log-path={audit_log}"]

    with LocalControlPlane(control_plane_bin, apiserver_args=args) as control_plane:
        server = control_plane.server
        # The start-up probes already went through the audited API server. It is still
        # writing: only lines already ended are whole (the last may be half written).
        events = [json.loads(line) for line in audit_log.read_text().split("\n")[:-1]]

    assert server.startswith("https://127.0.0.1:")
    assert any(event["requestURI"] == "/readyz" for event in events)
    assert all(event["level"] == "Metadata" for event in events)
