"""One fan-out plans each namespace once: the watch echo of the operator's own writes
brings no second pass over a namespace that is already as wanted."""

from __future__ import annotations

import uuid

from objects import has_default_sa, pull_secret_names, tenant_spec

NAMESPACES = 20


def test_a_fan_out_passes_over_each_namespace_once(
    cluster, operator_with, make_namespace, credentials, sources, wait_for
):
    # No periodic resync during the test: every pass counted is one the fan-out caused.
    operator = operator_with(resync_seconds=3600.0)
    tenant = uuid.uuid4().hex[:8]
    namespaces = [make_namespace("once", labels={"tenant": tenant}) for _ in range(NAMESPACES)]
    for namespace in namespaces:
        wait_for(lambda: has_default_sa(cluster, namespace), what=f"default SA in {namespace}")
    source = sources.create({"password": f"pw-{uuid.uuid4().hex}"})

    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    for namespace in namespaces:
        wait_for(
            lambda: pull_secret_names(cluster, namespace) == [name],
            what=f"default SA in {namespace} patched",
        )
    assert operator.controller.wait_idle(timeout=30)

    passes = operator.controller.stats.passes_by_namespace(name)
    assert passes == {namespace: 1 for namespace in namespaces}
