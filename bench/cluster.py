"""The cluster a benchmark runs against, the operator's own identity in it, and bulk API helpers.

On the local control plane kube-apiserver writes an audit log of every request the
operator's user makes, so write counts come from the API server, not from the
operator's own counters. The operator logs in as a ServiceAccount of its own
(token in a kubeconfig of its own) so that the audit policy can single it out.
"""

from __future__ import annotations

import base64
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from regcred.errors import ConflictError, NotFoundError
from regcred.kube.client import MERGE_PATCH, JsonObject, KubeClient
from regcred_dev.controlplane import KUBERNETES_VERSION, LocalControlPlane

__all__ = [
    "OPERATOR_NAMESPACE",
    "OPERATOR_USER",
    "BenchCluster",
    "bench_cluster",
    "list_all",
    "Timing",
    "run_concurrently",
    "run_timed",
]

OPERATOR_NAMESPACE = "regcred-bench"
OPERATOR_ACCOUNT = "regcred-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
TOKEN_SECONDS = 48 * 3600
CRD_FILES = sorted((Path(__file__).resolve().parents[1] / "crds").glob("regcred.dev_*.yaml"))
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "regcred-bench"
WAIT_TIMEOUT_SECONDS = 600.0

# Every request of the operator's user at Metadata level (no bodies: Secret data stays
# out of the log); nobody else's, so the log stays small at thousands of namespaces.
AUDIT_POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["{OPERATOR_USER}"]
  - level: None
"""

T = TypeVar("T")


@dataclass(frozen=True)
class BenchCluster:
    """An API server with an admin client, and a kubeconfig for the operator's own identity."""

    description: str
    admin: KubeClient
    admin_kubeconfig: Path  # the floors write as the admin
    operator_kubeconfig: Path
    # None on an external cluster: its audit log is not ours to read.
    audit_log: Path | None


def admin_client(kubeconfig: Path, pool_size: int) -> KubeClient:
    """A client whose connection pool holds one connection per concurrent request."""
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    # The default pool (5 per core) would open and discard connections under more threads.
    configuration.connection_pool_maxsize = pool_size
    return KubeClient(k8s_client.ApiClient(configuration))


@dataclass(frozen=True)
class Timing:
    seconds: float
    # The client's CPU time: its worker threads' over their tasks (`run_timed`), or a
    # floor process's own; never the observer's.
    cpu_seconds: float


def run_timed(action: Callable[[T], Any], items: Iterable[T], concurrency: int) -> Timing:
    """Apply `action` to every item with `concurrency` threads; the wall and CPU seconds taken."""
    spent: list[float] = []

    def timed(item: T) -> None:
        started = time.thread_time()
        try:
            action(item)
        finally:
            spent.append(time.thread_time() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in pool.map(timed, items):
            pass  # iterating re-raises the first failure
    return Timing(time.perf_counter() - started, sum(spent))


def run_concurrently(action: Callable[[T], Any], items: Iterable[T], concurrency: int) -> float:
    """Apply `action` to every item with `concurrency` threads; return the wall seconds taken."""
    return run_timed(action, items, concurrency).seconds


def list_all(kube: KubeClient, path: str, **query: str) -> list[JsonObject]:
    """Every item of a collection, page by page."""
    items: list[JsonObject] = []
    token: str | None = None
    while True:
        page = kube.request("GET", path, query={**query, "limit": 500, "continue": token})
        items.extend(page.get("items", []))
        token = page["metadata"].get("continue")
        if not token:
            return items


def wait_until(what: str, condition: Callable[[], bool], interval: float = 0.25) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {WAIT_TIMEOUT_SECONDS:.0f} s waiting for {what}")
        time.sleep(interval)


def create(kube: KubeClient, path: str, body: JsonObject) -> None:
    """Create an object; one that already exists (a re-run on an external cluster) is fine."""
    try:
        kube.request("POST", path, body=body)
    except ConflictError:
        pass


def install_crds(kube: KubeClient) -> None:
    for path in CRD_FILES:
        _install_crd(kube, yaml.safe_load(path.read_text()))


def _install_crd(kube: KubeClient, crd: dict) -> None:
    name = crd["metadata"]["name"]
    kube.request(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
        query={"fieldManager": FIELD_MANAGER, "force": "true"},
        body=crd,
        content_type=APPLY_PATCH,
    )

    def established() -> bool:
        found = kube.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        conditions = (found.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_until(f"the CRD {name} to be established", established)


def operator_kubeconfig(kube: KubeClient, admin_kubeconfig: Path, target: Path) -> Path:
    """Make the operator's ServiceAccount (cluster-admin for the benchmark) and a kubeconfig with its token."""
    create(kube, "/api/v1/namespaces", {"metadata": {"name": OPERATOR_NAMESPACE}})
    accounts = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts"
    create(kube, accounts, {"metadata": {"name": OPERATOR_ACCOUNT}})
    create(
        kube,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": FIELD_MANAGER},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": OPERATOR_ACCOUNT,
                    "namespace": OPERATOR_NAMESPACE,
                }
            ],
        },
    )
    token = kube.request(
        "POST",
        f"{accounts}/{OPERATOR_ACCOUNT}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS},
        },
    )["status"]["token"]
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in admin["contexts"]}
    cluster_name = contexts[admin["current-context"]]["cluster"]
    cluster = next(c for c in admin["clusters"] if c["name"] == cluster_name)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": OPERATOR_USER, "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster_name, "user": OPERATOR_USER}}
        ],
        "current-context": "operator",
    }
    target.touch(mode=0o600)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


@contextmanager
def bench_cluster(external_kubeconfig: Path | None, pool_size: int) -> Iterator[BenchCluster]:
    """The external cluster, or a fresh local control plane with an audit log; CRD and identity ready."""
    with tempfile.TemporaryDirectory(prefix="regcred-bench-") as scratch:
        workdir = Path(scratch)
        if external_kubeconfig is not None:
            kube = admin_client(external_kubeconfig, pool_size)
            yield _prepared(
                kube,
                external_kubeconfig,
                workdir,
                None,
                f"external cluster {kube.api_client.configuration.host}",
            )
            return
        policy = workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        audit_log = workdir / "audit.log"
        apiserver_args = [f"--audit-policy-file={policy}", f"--audit-log-path={audit_log}"]
        with LocalControlPlane(apiserver_args=apiserver_args) as control_plane:
            kube = admin_client(control_plane.kubeconfig, pool_size)
            description = f"local control plane, Kubernetes {KUBERNETES_VERSION}"
            yield _prepared(kube, control_plane.kubeconfig, workdir, audit_log, description)


def _prepared(
    kube: KubeClient, kubeconfig: Path, workdir: Path, audit_log: Path | None, description: str
) -> BenchCluster:
    install_crds(kube)
    identity = operator_kubeconfig(kube, kubeconfig, workdir / "operator.kubeconfig")
    return BenchCluster(
        description=description,
        admin=kube,
        admin_kubeconfig=kubeconfig,
        operator_kubeconfig=identity,
        audit_log=audit_log,
    )


def secret_body(
    name: str,
    data: dict[str, bytes],
    type_: str = "Opaque",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> JsonObject:
    metadata: JsonObject = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": metadata,
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }


def delete_namespaces(kube: KubeClient, names: Iterable[str], concurrency: int) -> None:
    """Ask for deletion (not waiting for finalization) of namespaces made on an external cluster."""

    def delete(name: str) -> None:
        try:
            kube.request("DELETE", f"/api/v1/namespaces/{name}")
        except NotFoundError:
            pass

    run_concurrently(delete, names, concurrency)


def merge_patch(kube: KubeClient, path: str, patch: JsonObject) -> JsonObject:
    return kube.request("PATCH", path, body=patch, content_type=MERGE_PATCH)
