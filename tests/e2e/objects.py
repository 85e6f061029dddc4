"""Small readers and spec builders shared by the end-to-end tests."""

from __future__ import annotations

import base64
import subprocess
import sys

from kubernetes import client

SERVER = "registry.acme.example:5000"


def replica(cluster, namespace: str, name: str) -> client.V1Secret | None:
    try:
        return cluster.core.read_namespaced_secret(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def docker_config(secret: client.V1Secret) -> bytes:
    return base64.b64decode(secret.data[".dockerconfigjson"])


def pull_secret_names(cluster, namespace: str, account: str = "default") -> list[str]:
    sa = cluster.core.read_namespaced_service_account(account, namespace)
    return [ref.name for ref in sa.image_pull_secrets or []]


def secret_forms(user: str, password: str) -> list[str]:
    """How a password could leak: as is, base64 (a Secret's data), base64 of user:password (auth)."""
    return [
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"{user}:{password}".encode()).decode(),
    ]


def tenant_spec(tenant: str, password_secret: str, **extra) -> dict:
    return {
        "registries": [
            {"server": SERVER, "username": "robot-ci", "email": "ci@acme.example",
             "passwordSecretRef": {"name": password_secret}}
        ],
        "namespaceSelector": {"matchLabels": {"tenant": tenant}},
        **extra,
    }


def has_default_sa(cluster, namespace: str) -> bool:
    try:
        cluster.core.read_namespaced_service_account("default", namespace)
        return True
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise


def kubectl_regcred(cluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`kubectl regcred ARGS` against the test cluster, as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "regcred.plugin", *args, "--kubeconfig", str(cluster.kubeconfig)],
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )
