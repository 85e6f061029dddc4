"""Secret material never leaves the replicas: not in logs (text or JSON, verbose), Events,
statuses, metrics, nor the exception traces an API outage produces.

The flows run with unique canary passwords through everything that produces
messages: a first sync, a rotation across a kube-apiserver restart, broken sources
of every kind (the canary inside the broken value), and deletion. Then every output
is searched for each canary as plain text, base64, and base64 of user:password.
Canaries sit where secrets sit (passwords, entry values); registry server names
(the `auths` keys) are identifiers the status names on purpose (see docs/security.md).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from harness import current_condition

from e2e.conftest import poll
from e2e.objects import secret_forms, tenant_spec
from regcred.models import API_GROUP, API_VERSION, PLURAL
from regcred_dev.controlplane.runner import free_port


def scrape(address: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
            return reply.read().decode()
    except (urllib.error.URLError, OSError):
        return None


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_canaries_appear_in_no_log_event_status_or_metric(
    cluster, make_namespace, credentials, sources, operator_process, log_format
) -> None:
    control_plane = cluster.require_local_control_plane()
    user = f"canary-user-{uuid.uuid4().hex[:8]}"
    passwords = [f"canary-pass-{uuid.uuid4().hex}" for _ in range(2)]
    forms = [form for password in passwords for form in secret_forms(user, password)]
    metrics_address = f"127.0.0.1:{free_port()}"
    operator_process.start("--log-format", log_format, "--metrics-address", metrics_address, verbose=True)

    tenant = uuid.uuid4().hex[:8]
    make_namespace("leak", labels={"tenant": tenant})
    source = sources.create({"password": passwords[0]})
    spec = tenant_spec(tenant, source)
    spec["registries"][0]["username"] = user
    name = credentials.create(spec)
    credentials.wait_ready(name)

    # A rotation that meets an outage: retries, warnings and tracebacks get logged.
    sources.replace_data(source, {"password": passwords[1]})
    control_plane.restart_apiserver()
    credentials.wait_ready(name, timeout=60)

    broken_sources = [
        ({"password": passwords[1].encode() + b"\xff"}, "Opaque", "SourceValueNotText"),
        ({"token": passwords[1]}, "Opaque", "SourceKeyNotFound"),
        ({".dockerconfigjson": json.dumps({"credsStore": passwords[1]})}, "kubernetes.io/dockerconfigjson", "SourceInvalidDockerConfig"),
        ({".dockerconfigjson": f'{{"auths": {{"r.example": "{passwords[1]}"}}}}'}, "kubernetes.io/dockerconfigjson", "SourceInvalidDockerConfig"),
        ({".dockerconfigjson": b'{"auths": {"r": {"password": "' + passwords[1].encode() + b'\xff"}}}'}, "kubernetes.io/dockerconfigjson", "SourceInvalidDockerConfig"),
    ]  # fmt: skip
    for data, type_, reason in broken_sources:
        broken = sources.create(data, type_=type_)
        if type_ == "Opaque":
            patch = {"registries": [{**spec["registries"][0], "passwordSecretRef": {"name": broken}}]}
        else:
            patch = {"registries": None, "dockerConfigSecretRefs": [{"name": broken}]}
        credentials.patch_spec(name, patch)
        poll(
            lambda reason=reason: (current_condition(credentials, name, "SourceValid") or {}).get("reason") == reason,
            timeout=30, what=f"SourceValid reason {reason}",
        )

    metrics = scrape(metrics_address)
    statuses = json.dumps(cluster.custom.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL))
    credentials.delete(name)
    events = json.dumps(
        [event.to_dict() for event in cluster.core.list_event_for_all_namespaces().items], default=str
    )
    logs = operator_process.log_text()
    assert "Traceback" in logs or "WARNING" in logs or '"level": "warning"' in logs, (
        "the outage produced no warning: the log search proves less than it claims"
    )

    outputs = {"operator log": logs, "events": events, "statuses": statuses}
    assert metrics is not None, f"the operator served no metrics on {metrics_address}"
    outputs["metrics"] = metrics
    if log_format == "json":
        records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert any(r.get("credential") == name and r.get("namespace") for r in records), (
            "no JSON log record names the credential and a namespace as fields"
        )
    print(f"{log_format}: searched", {where: len(text) for where, text in outputs.items()}, "characters")
    leaks = [(where, form) for where, text in outputs.items() for form in forms if form in text]
    assert not leaks, f"secret material found: {leaks}"
