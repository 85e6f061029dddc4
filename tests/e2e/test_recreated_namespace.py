"""A namespace deleted and created again under the same name gets its copy again.

The operator's caches hold what it wrote until the watch reports otherwise; a deleted
replica must never come back to them from an older write or read (it would then stand
for a Secret that no longer exists, and the new namespace would get nothing).
"""

from __future__ import annotations

import uuid

from kubernetes import client
from objects import has_default_sa, pull_secret_names, replica, tenant_spec


def namespace_gone(cluster, name: str) -> bool:
    try:
        cluster.core.read_namespace(name)
        return False
    except client.ApiException as error:
        if error.status == 404:
            return True
        raise


def test_a_namespace_deleted_and_created_again_gets_its_copy(cluster, make_namespace, credentials, sources, wait_for):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("again", labels={"tenant": tenant})
    source = sources.create({"password": f"pw-{uuid.uuid4().hex}"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    first = wait_for(lambda: replica(cluster, namespace, name), what="the first copy")

    for round_number in range(3):
        cluster.core.delete_namespace(namespace)
        wait_for(lambda: namespace_gone(cluster, namespace), timeout=120, what="the namespace to be deleted")
        cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=namespace, labels={"tenant": tenant, **make_namespace.label},
        )))
        again = wait_for(lambda: replica(cluster, namespace, name), timeout=60, what=f"the copy, round {round_number}")
        assert again.metadata.uid != first.metadata.uid
        wait_for(lambda: has_default_sa(cluster, namespace), what="the default ServiceAccount")
        wait_for(lambda: pull_secret_names(cluster, namespace) == [name], what="the ServiceAccount entry")
        first = again
