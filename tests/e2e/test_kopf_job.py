"""kopf's one job is deletion (regcred.handlers): the finalizer and the hand-off to cleanup.

Changes are the controller's alone (its informer queues them), so on a credential that
was created and changed kopf has left its finalizer and nothing else: no diff-base or
progress annotation. Deletion through kopf is tested in test_lifecycle.py.
"""

from __future__ import annotations

import uuid

from objects import replica, tenant_spec

from regcred.handlers import FINALIZER

KOPF_ANNOTATION_PREFIXES = ("regcred.dev/", "kopf.zalando.org/")


def test_a_created_and_changed_credential_carries_only_kopfs_finalizer(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("kopf", labels={"tenant": tenant})
    source = sources.create({"password": f"pw-{uuid.uuid4().hex}"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)

    # kopf has no update handler: the controller's informer alone carries the change out.
    renamed = f"{name}-renamed"
    credentials.patch_spec(name, {"secretName": renamed})
    wait_for(lambda: replica(cluster, namespace, renamed) is not None, what="the renamed replica")
    credentials.wait_ready(name)

    metadata = credentials.get(name)["metadata"]
    assert metadata["finalizers"] == [FINALIZER]
    annotations = metadata.get("annotations") or {}
    assert [key for key in annotations if key.startswith(KOPF_ANNOTATION_PREFIXES)] == []
