"""spec.verify turned against the platform, by a tenant: the operator as a network probe.

An impersonated tenant user with `edit` in its own namespaces (tests/e2e/tenancy.py)
creates TenantRegistryCredentials with `verify.enabled` that point at servers only the
operator can reach (its loopback), at a Bearer realm there, at tarpits that hold their
connections, and at plain HTTP. The operator runs in-process against a control plane of
this module's own, configured as each test says, so no other operator answers these
credentials and no other test's operator is reconfigured.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakeregistry import RecordingRegistry, Tarpit
from kubernetes import client

from e2e.conftest import CRDS, Kubectl, OperatorHandle, poll
from e2e.tenancy import TENANT_LABEL, TenantWorld, refused
from regcred.config import OperatorConfig
from regcred.models import API_GROUP, API_VERSION, TENANT_KIND, TENANT_PLURAL
from security.conftest import install_crds, own_control_plane
from testcluster import Cluster

pytestmark = pytest.mark.e2e

TENANT_ROLES = CRDS.parent / "deploy" / "base" / "tenant-roles.yaml"
VERIFY = {"enabled": True, "intervalMinutes": 5}
# What status may say about a registry a tenant named: nothing the operator's network position taught it.
REVEALING = ("HTTP", "401", "403", "connect", "refused the", "timed out", "realm", "token service", "TLS")


cluster = own_control_plane("these tests reconfigure the only operator of the cluster: they need a local control plane")


@pytest.fixture(scope="module")
def platform(cluster: Cluster, kubectl: Kubectl) -> Iterator[Callable[..., OperatorHandle]]:
    """`platform(**settings)` (re)starts the module's operator: a tenant label, and those settings."""
    install_crds(kubectl)
    kubectl("apply", "--server-side", "-f", str(TENANT_ROLES))
    operator_namespace = f"regcred-sec-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=operator_namespace)))
    base = OperatorConfig(
        operator_namespace=operator_namespace, tenant_label=TENANT_LABEL, resync_seconds=4.0, status_debounce_seconds=0.2
    )
    handle = OperatorHandle(base, cluster.kubeconfig)
    yield handle.restart
    handle.stop()


class Tenant:
    """A tenant user with `edit` in its home namespace, where it keeps its credentials."""

    def __init__(self, world: TenantWorld, make_namespace) -> None:
        self.world = world
        self.home = make_namespace("sec-verify", labels={TENANT_LABEL: f"t{uuid.uuid4().hex[:6]}"})
        world.grant_edit(self.home)
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name="robot"),
            data={"password": base64.b64encode(f"pw-{uuid.uuid4().hex}".encode()).decode()},
        )
        poll(lambda: refused(lambda: world.tenant.create_namespaced_secret(self.home, body)) is None,
             what="the tenant's edit rights to take effect")

    def create(self, name: str, *registries: dict[str, Any]) -> str | None:
        """Create a verifying credential as the tenant: None when admitted, else the API server's refusal."""
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": TENANT_KIND,
            "metadata": {"name": name, "namespace": self.home},
            "spec": {"registries": list(registries), "verify": VERIFY},
        }
        return refused(lambda: self.world.tenant_custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, self.home, TENANT_PLURAL, body
        ))

    def status(self, name: str) -> dict[str, Any]:
        body = self.world.tenant_custom.get_namespaced_custom_object(API_GROUP, API_VERSION, self.home, TENANT_PLURAL, name)
        return body.get("status") or {}

    def checked(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """The status once the registries were checked (CredentialsValid is no longer Pending)."""
        def done() -> dict[str, Any] | None:
            status = self.status(name)
            found = next((c for c in status.get("conditions", []) if c["type"] == "CredentialsValid"), None)
            return status if found and found["reason"] != "Pending" else None

        return poll(done, timeout=timeout, what=f"{name} checked")


def entry(server: str, **more: Any) -> dict[str, Any]:
    return {"server": server, "username": "robot", "passwordSecretRef": {"name": "robot"}, **more}


def credentials_valid(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "CredentialsValid")


def assert_reveals_nothing(status: dict[str, Any]) -> None:
    told = " ".join([check["message"] for check in status["registryChecks"]] + [credentials_valid(status)["message"]])
    for check in status["registryChecks"]:
        told = told.replace(check["server"], "<server>")  # the tenant's own words; its port may hold "401"
    for word in REVEALING:
        assert word not in told, f"status tells the tenant {word!r}: {told}"


@pytest.fixture
def world(cluster: Cluster) -> Iterator[TenantWorld]:
    world = TenantWorld(cluster)
    yield world
    world.close()


@pytest.fixture
def recorder() -> Iterator[RecordingRegistry]:
    server = RecordingRegistry()
    yield server
    server.close()


@pytest.mark.parametrize("settings", [{}, {"tenant_verify": True}], ids=["tenant-checks-off", "no-allow-list"])
def test_a_loopback_registry_gets_no_connection_and_status_says_refused_by_policy(
    platform, world, make_namespace, recorder: RecordingRegistry, settings: dict[str, Any]
) -> None:
    platform(**settings)
    tenant = Tenant(world, make_namespace)
    # Over TLS and, said explicitly, over plain HTTP: both at the operator's own loopback.
    assert tenant.create("probe", entry(recorder.address), entry(f"http://{recorder.address}", plainHTTP=True)) is None

    status = tenant.checked("probe")

    assert recorder.connections == 0, f"the operator connected to its loopback: {recorder.paths}"
    assert {check["result"] for check in status["registryChecks"]} == {"RefusedByPolicy"}
    assert (credentials_valid(status)["status"], credentials_valid(status)["reason"]) == ("False", "RefusedByPolicy")
    assert_reveals_nothing(status)


def test_a_bearer_realm_on_the_loopback_is_refused_even_when_the_registry_is_allowed(
    platform, world, make_namespace
) -> None:
    token_service = RecordingRegistry()
    registry = RecordingRegistry(f'Bearer realm="http://{token_service.address}/token",service="probe"')
    try:
        # The platform allows the registry by name; the realm names an address nobody allowed.
        platform(tenant_verify=True, tenant_verify_allow=("localhost",))
        tenant = Tenant(world, make_namespace)
        assert tenant.create("realm", entry(f"http://localhost:{registry.port}", plainHTTP=True)) is None

        status = tenant.checked("realm")

        assert registry.paths, "the allowed registry was never asked"
        assert token_service.connections == 0, f"the realm was followed: {token_service.paths}"
        assert [check["result"] for check in status["registryChecks"]] == ["RefusedByPolicy"]
        assert_reveals_nothing(status)
    finally:
        registry.close()
        token_service.close()


def test_a_tarpit_registry_delays_no_other_credentials_check(platform, world, make_namespace, recorder) -> None:
    # Loopback is allowed here so that tarpits and the registry can run in the test.
    platform(tenant_verify=True, tenant_verify_allow=("127.0.0.1/32",))
    attacker, other = Tenant(world, make_namespace), Tenant(world, make_namespace)
    tarpits = [Tarpit() for _ in range(4)]  # more than the operator ever had verify workers
    try:
        for number, tarpit in enumerate(tarpits):
            assert attacker.create(f"tarpit-{number}", entry(tarpit.address)) is None
        for tarpit in tarpits:
            assert tarpit.accepted.wait(60), "the operator never connected to a tarpit"

        assert other.create("honest", entry(f"http://{recorder.address}", plainHTTP=True)) is None
        status = other.checked("honest")

        # The other tenant's check finished while every tarpit still held its connection.
        assert not any(tarpit.hung_up.is_set() for tarpit in tarpits), "the check waited for a tarpit to give up"
        assert [check["result"] for check in status["registryChecks"]] == ["Valid"]
        assert credentials_valid(status)["reason"] == "Verified"
    finally:
        for tarpit in tarpits:
            tarpit.close()


@pytest.mark.parametrize("plain", [None, False], ids=["field-absent", "field-false"])
def test_plain_http_is_refused_at_admission_without_the_explicit_field(
    platform, world, make_namespace, plain: bool | None
) -> None:
    platform()
    tenant = Tenant(world, make_namespace)
    extra = {} if plain is None else {"plainHTTP": plain}

    refusal = tenant.create("cleartext", entry("http://registry.example:5000", **extra))

    assert refusal is not None and "plainHTTP" in refusal
