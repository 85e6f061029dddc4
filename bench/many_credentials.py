"""Many credentials at once: C RegistryCredentials over N namespaces, each serving its own slice.

Namespace i is labelled `SLICE_LABEL: i % C`; credential j selects `SLICE_LABEL: j`,
builds its replica from a source Secret of its own (its own password, so its own
content hash) and names the replica after itself. Every namespace is served by exactly
one credential, so no two credentials meet in a namespace and the writes needed are
known: one Secret create and one ServiceAccount patch per namespace for the fan-out,
and, when one credential's source changes, one Secret update per namespace it serves.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench import go_floor
from bench.cluster import (
    OPERATOR_NAMESPACE,
    delete_namespaces,
    list_all,
    merge_patch,
    run_concurrently,
    secret_body,
)
from bench.workload import (
    CREDENTIALS_PATH,
    USERNAME,
    WantedReplica,
    floor_secret,
    replica_content,
)
from regcred.errors import NotFoundError
from regcred.kube.client import JsonObject, KubeClient
from regcred.models import API_GROUP, API_VERSION, KIND
from regcred.planning.conditions import READY
from regcred.planning.plan import CREDENTIAL_LABEL

__all__ = ["REPLICAS_SELECTOR", "SLICE_LABEL", "Fleet", "writes_split"]

PREFIX = "bench-many"
SLICE_LABEL = "bench.regcred.dev/slice"
# Every credential's replicas and the floor's stand-ins (all carry the credential label);
# on its own control plane the scenario's are the only ones.
REPLICAS_SELECTOR = CREDENTIAL_LABEL


def password(credential: int, generation: int) -> bytes:
    return f"{PREFIX}-password-{credential}-{generation:04d}".encode()


@dataclass(frozen=True)
class Fleet:
    """The scenario's names, label scheme and expected content; methods make its requests."""

    credentials: int
    namespace_count: int

    def _id(self, credential: int) -> str:
        return f"{PREFIX}-{credential:0{max(3, len(str(self.credentials - 1)))}d}"

    def credential(self, index: int) -> str:
        return self._id(index)

    def secret_name(self, index: int) -> str:
        return f"{self._id(index)}-pull"

    def source(self, index: int) -> str:
        return f"{self._id(index)}-registry"

    def floor_secret_name(self, index: int) -> str:
        return f"{self._id(index)}-floor"

    def go_floor_secret_name(self, index: int) -> str:
        return f"{self._id(index)}-gofloor"

    @functools.cached_property
    def namespaces(self) -> list[str]:
        return [f"{PREFIX}-{i:05d}" for i in range(self.namespace_count)]

    def served(self, index: int) -> list[str]:
        """The namespaces credential `index` selects."""
        return self.namespaces[index :: self.credentials]

    def spec(self, index: int) -> dict[str, Any]:
        return {
            "secretName": self.secret_name(index),
            "registries": [
                {
                    "server": f"registry-{index}.bench.example:5000",
                    "passwordSecretRef": {"name": self.source(index)},
                }
            ],
            "namespaceSelector": {"matchLabels": {SLICE_LABEL: str(index)}},
            "serviceAccounts": ["default"],
        }

    def content(self, index: int, generation: int) -> tuple[bytes, str]:
        """Credential `index`'s replica data and content hash at its source's `generation`."""
        return _content(self, index, generation)

    def wanted(self, generations: Mapping[int, int]) -> dict[str, WantedReplica]:
        """Per namespace, the replica it should hold; sources not in `generations` are at 0."""
        wanted = {}
        for index in range(self.credentials):
            _, content_hash = self.content(index, generations.get(index, 0))
            replica = WantedReplica(self.secret_name(index), content_hash)
            wanted.update(dict.fromkeys(self.served(index), replica))
        return wanted

    # -- setting up ------------------------------------------------------------
    def create_namespaces(self, kube: KubeClient, concurrency: int) -> None:
        def create(numbered: tuple[int, str]) -> None:
            index, name = numbered
            labels = {SLICE_LABEL: str(index % self.credentials)}
            kube.request(
                "POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": labels}}
            )

        run_concurrently(create, enumerate(self.namespaces), concurrency)

    def create_sources(self, kube: KubeClient, concurrency: int) -> None:
        def create(index: int) -> None:
            body = secret_body(
                self.source(index), {"username": USERNAME, "password": password(index, 0)}
            )
            kube.request("POST", f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets", body=body)

        run_concurrently(create, range(self.credentials), concurrency)

    def apply_credentials(self, kube: KubeClient, concurrency: int) -> None:
        def apply(index: int) -> None:
            body = {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "metadata": {"name": self.credential(index)},
                "spec": self.spec(index),
            }
            kube.request("POST", CREDENTIALS_PATH, body=body)

        run_concurrently(apply, range(self.credentials), concurrency)

    def change_source(self, kube: KubeClient, index: int, generation: int) -> None:
        """A new password in credential `index`'s source Secret."""
        merge_patch(
            kube,
            f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/{self.source(index)}",
            {"data": {"password": base64.b64encode(password(index, generation)).decode()}},
        )

    def reported(self, kube: KubeClient, generations: Mapping[int, int]) -> bool:
        """Every credential's status reports its namespaces synced with the content of its
        source's generation (0 where not in `generations`): the operator's own "done"."""
        live = {item["metadata"]["name"]: item for item in list_all(kube, CREDENTIALS_PATH)}
        for index in range(self.credentials):
            item = live.get(self.credential(index))
            if item is None:
                return False
            status = item.get("status") or {}
            ready = any(
                c.get("type") == READY and c.get("status") == "True"
                for c in status.get("conditions") or ()
            )
            _, content_hash = self.content(index, generations.get(index, 0))
            if not (
                ready
                and status.get("observedGeneration") == item["metadata"].get("generation")
                and status.get("contentHash") == content_hash
                and status.get("syncedNamespaces") == len(self.served(index))
            ):
                return False
        return True

    # -- the floor: exactly the writes the scenario needs ----------------------------
    def _floor_body(self, index: int, generation: int) -> JsonObject:
        return floor_secret(
            self.floor_secret_name(index), self.credential(index), self.content(index, generation)
        )

    def floor_fan_out(self, kube: KubeClient, concurrency: int) -> float:
        """One Secret create and one ServiceAccount patch per namespace; returns the seconds taken."""
        bodies = [self._floor_body(index, 0) for index in range(self.credentials)]

        def write(numbered: tuple[int, str]) -> None:
            index, namespace = numbered
            credential = index % self.credentials
            kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=bodies[credential])
            merge_patch(
                kube,
                f"/api/v1/namespaces/{namespace}/serviceaccounts/default",
                {"imagePullSecrets": [{"name": self.floor_secret_name(credential)}]},
            )

        return run_concurrently(write, enumerate(self.namespaces), concurrency)

    def floor_source_change(
        self, kube: KubeClient, index: int, generation: int, concurrency: int
    ) -> float:
        """One Secret update per namespace credential `index` serves; returns the seconds taken."""
        body = self._floor_body(index, generation)
        name = self.floor_secret_name(index)

        def write(namespace: str) -> None:
            kube.request("PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", body=body)

        return run_concurrently(write, self.served(index), concurrency)

    def go_floor_plan(self, changed: int, generation: int) -> go_floor.Plan:
        """The Go floor's writes, as the Python floor's under Secret names of their own: the
        fan-out, then the change of credential `changed`'s source to `generation`; the
        untimed reset deletes its Secrets and puts the Python floor's entries back."""
        plan = go_floor.Plan()
        for index in range(self.credentials):
            name = self.go_floor_secret_name(index)
            content = self.content(index, 0)
            plan.body(f"fan-out-{index}", floor_secret(name, self.credential(index), content))
            plan.body(f"account-{index}", {"imagePullSecrets": [{"name": name}]})
            restored = {"imagePullSecrets": [{"name": self.floor_secret_name(index)}]}
            plan.body(f"restore-{index}", restored)
        changed_name = self.go_floor_secret_name(changed)
        updated = plan.body(
            "change",
            floor_secret(changed_name, self.credential(changed), self.content(changed, generation)),
        )
        numbered = [(i % self.credentials, ns) for i, ns in enumerate(self.namespaces)]
        plan.scenario(
            "fan-out",
            (
                [
                    go_floor.create_secret(ns, f"fan-out-{index}"),
                    go_floor.patch_account(ns, f"account-{index}"),
                ]
                for index, ns in numbered
            ),
        )
        plan.scenario(
            "source change", ([go_floor.update_secret(ns, updated)] for ns in self.served(changed))
        )
        plan.scenario(
            "reset",
            (
                [
                    go_floor.delete_secret(ns, self.go_floor_secret_name(index)),
                    go_floor.patch_account(ns, f"restore-{index}"),
                ]
                for index, ns in numbered
            ),
            timed=False,
        )
        return plan

    # -- clean-up on someone else's cluster -----------------------------------------
    def delete_credentials(self, kube: KubeClient, concurrency: int) -> None:
        def delete(index: int) -> None:
            _delete(kube, f"{CREDENTIALS_PATH}/{self.credential(index)}")

        run_concurrently(delete, range(self.credentials), concurrency)

    def credentials_gone(self, kube: KubeClient) -> bool:
        ours = {self.credential(index) for index in range(self.credentials)}
        return not any(
            item["metadata"]["name"] in ours for item in list_all(kube, CREDENTIALS_PATH)
        )

    def delete_the_rest(self, kube: KubeClient, concurrency: int) -> None:
        """Sources and namespaces; the credentials must be gone first (their clean-up needs them)."""

        def delete(index: int) -> None:
            _delete(kube, f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/{self.source(index)}")

        run_concurrently(delete, range(self.credentials), concurrency)
        delete_namespaces(kube, self.namespaces, concurrency)


@functools.cache
def _content(fleet: Fleet, index: int, generation: int) -> tuple[bytes, str]:
    # Polled statuses are compared with it every second: build each content once.
    return replica_content(
        fleet.spec(index), fleet.source(index), USERNAME, password(index, generation)
    )


def _delete(kube: KubeClient, path: str) -> None:
    try:
        kube.request("DELETE", path)
    except NotFoundError:
        pass


def writes_split(
    fleet: Fleet, index: int, writes: Mapping[tuple[str, str, str], int]
) -> tuple[int, int, dict[str, int]]:
    """Writes (by resource, namespace, name) split into: credential `index`'s replicas, the
    credential itself (status, metadata), and everything else by resource."""
    replicas = {(namespace, fleet.secret_name(index)) for namespace in fleet.served(index)}
    own_replicas = own_credential = 0
    elsewhere: dict[str, int] = {}
    for (resource, namespace, name), count in writes.items():
        if resource == "secrets" and (namespace, name) in replicas:
            own_replicas += count
        elif resource.split("/")[0] == "registrycredentials" and name == fleet.credential(index):
            own_credential += count
        else:
            elsewhere[resource] = elsewhere.get(resource, 0) + count
    return own_replicas, own_credential, dict(sorted(elsewhere.items()))
