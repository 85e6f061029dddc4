"""The API server answers the informers' metadata-only requests with metadata only.

The operator's Secret caches rely on it: a list with `METADATA_LIST` and a watch with
`METADATA_OBJECT` must bring labels, annotations, owners and resourceVersions, and
never a Secret's data or type.
"""

from __future__ import annotations

import base64
import threading

from kubernetes import client

from regcred.kube.client import METADATA_LIST, METADATA_OBJECT, KubeClient, load_api_client
from regcred.kube.informer import Informer, by_namespace_and_name
from regcred.kube.paths import secrets_path
from regcred.kube.projections import resource_version


def test_secrets_listed_and_watched_as_metadata_carry_no_data(cluster, make_namespace):
    namespace = make_namespace("meta")
    kube = KubeClient(load_api_client(str(cluster.kubeconfig)))
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="first", labels={"team": "a"}, annotations={"note": "n"}),
        data={"blob": base64.b64encode(b"do not send me").decode()},
    )
    cluster.core.create_namespaced_secret(namespace, secret)

    listed = kube.request("GET", secrets_path(namespace), query={"limit": 10}, accept=METADATA_LIST)
    assert listed["kind"] == "PartialObjectMetadataList"
    [item] = listed["items"]
    assert item["kind"] == "PartialObjectMetadata"
    assert set(item) == {"kind", "apiVersion", "metadata"}
    assert item["metadata"]["labels"] == {"team": "a"}
    assert item["metadata"]["annotations"] == {"note": "n"}

    events: list[dict] = []
    opened = threading.Event()
    query = {"resourceVersion": listed["metadata"]["resourceVersion"], "timeoutSeconds": 10}

    def watch() -> None:
        for event in kube.watch(secrets_path(namespace), query, read_timeout=20,
                                on_open=lambda abort: opened.set(), accept=METADATA_OBJECT):
            events.append(event)
            if event["type"] == "DELETED":
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert opened.wait(10)
    cluster.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="second"), data={"blob": base64.b64encode(b"nor me").decode()}
    ))
    cluster.core.delete_namespaced_secret("second", namespace)
    watcher.join(20)
    assert [event["type"] for event in events] == ["ADDED", "DELETED"]
    for event in events:
        assert event["object"]["kind"] == "PartialObjectMetadata"
        assert set(event["object"]) == {"kind", "apiVersion", "metadata"}
    # A deletion is reported at a version past the object's last one: the informer's horizon.
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


def test_a_metadata_informer_fills_from_an_empty_namespace_and_from_a_full_one(cluster, make_namespace):
    namespace = make_namespace("meta")
    kube = KubeClient(load_api_client(str(cluster.kubeconfig)))

    def loaded() -> dict:
        informer = Informer(kube, secrets_path(namespace), key=by_namespace_and_name, project=resource_version,
                            watch_seconds=10, metadata_only=True)
        informer.load()
        return informer.snapshot()

    assert loaded() == {}  # the server sends `"items": null` for an empty metadata list
    created = cluster.core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="one")))
    assert loaded() == {(namespace, "one"): created.metadata.resource_version}
