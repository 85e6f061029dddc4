"""KubeClient applies its ClientPolicy (the write gate, the request timeout, the user agent) and its impersonation."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from kubernetes import client as k8s_client

from regcred.errors import NotLeaderError, UnavailableError
from regcred.kube.client import ClientPolicy, Impersonation, KubeClient, kubeconfig_impersonation

PATH = "/api/v1/namespaces/team-a/secrets/pull"


class RecordingPool:
    """Stands in for the API server's connection pool: records what would have been sent."""

    def __init__(self, statuses: list[int] | None = None, body: bytes = b"{}") -> None:
        self.sent: list[tuple[str, urllib3.Timeout]] = []
        self.body = body
        # Run as each request is sent (e.g. to let the write gate close meanwhile).
        self.on_send: Callable[[], None] = lambda: None
        self.urls: list[str] = []
        self.bodies: list[bytes | None] = []
        self.headers: list[dict[str, str]] = []
        self._statuses = statuses or []

    def urlopen(
        self, method: str, url: str, *, body: bytes | None, headers: dict[str, str], timeout: urllib3.Timeout, **_: Any
    ) -> Any:
        self.sent.append((method, timeout))
        self.bodies.append(body)
        self.urls.append(url)
        self.headers.append(headers)
        self.on_send()
        status = self._statuses.pop(0) if self._statuses else 200
        return urllib3.HTTPResponse(body=io.BytesIO(self.body), status=status, preload_content=False)


class RecordingPoolManager(urllib3.PoolManager):
    def __init__(self, pool: RecordingPool) -> None:
        super().__init__()
        self.pool = pool

    def connection_from_url(self, url: str, pool_kwargs: Any = None) -> Any:
        return self.pool


class RecordingApiClient(k8s_client.ApiClient):
    """A real ApiClient, with a bearer token, whose connection pool only records."""

    def __init__(self, statuses: list[int] | None = None, host: str = "https://127.0.0.1:6443") -> None:
        configuration = k8s_client.Configuration(host=host)
        configuration.api_key = {"authorization": "token-1"}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        super().__init__(configuration)
        self.recorder = RecordingPool(statuses)
        self.rest_client.pool_manager = RecordingPoolManager(self.recorder)

    @property
    def sent(self) -> list[tuple[str, urllib3.Timeout]]:
        return self.recorder.sent


class Gate:
    def __init__(self, open_: bool) -> None:
        self.open = open_
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.open


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_closed_gate_stops_every_write_before_it_is_sent(method):
    api_client = RecordingApiClient()
    client = KubeClient(api_client, policy=ClientPolicy(write_gate=Gate(False)))
    with pytest.raises(NotLeaderError) as refused:
        client.request(method, PATH, body={"data": {".dockerconfigjson": "c2VjcmV0"}})
    assert api_client.sent == []
    assert "c2VjcmV0" not in str(refused.value)


def test_reads_do_not_ask_the_gate_and_an_open_gate_lets_writes_through():
    api_client, gate = RecordingApiClient(), Gate(False)
    client = KubeClient(api_client, policy=ClientPolicy(write_gate=gate))
    client.request("GET", PATH)
    assert gate.asked == 0
    gate.open = True
    client.request("PATCH", PATH, body={})
    assert [method for method, _ in api_client.sent] == ["GET", "PATCH"]


def test_without_a_gate_every_write_is_sent():
    api_client = RecordingApiClient()
    KubeClient(api_client).request("DELETE", PATH)
    assert [method for method, _ in api_client.sent] == ["DELETE"]


def test_the_policy_sets_the_request_timeout_and_the_user_agent():
    api_client = RecordingApiClient()
    client = KubeClient(api_client, policy=ClientPolicy(request_timeout=1.5, user_agent="regcred-operator/test (a)"))
    client.request("POST", PATH, body={})
    client.request("GET", PATH, timeout=4.0)
    assert [timeout.total for _, timeout in api_client.sent] == [1.5, 4.0]
    assert {headers["User-Agent"] for headers in api_client.recorder.headers} == {"regcred-operator/test (a)"}


def test_the_token_is_read_once_a_minute_and_again_after_a_401():
    api_client = RecordingApiClient(statuses=[200, 200, 401, 200])
    client = KubeClient(api_client)
    client.request("GET", PATH)
    api_client.configuration.api_key = {"authorization": "token-2"}  # rotated on disk, say
    client.request("GET", PATH)  # within the minute: the token read before
    client.request("GET", PATH)  # refused with 401: read afresh and sent again
    tokens = [headers["Authorization"] for headers in api_client.recorder.headers]
    assert tokens == ["Bearer token-1", "Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_write_sent_again_after_a_401_asks_the_gate_again():
    api_client, gate = RecordingApiClient(statuses=[401, 200]), Gate(True)
    client = KubeClient(api_client, policy=ClientPolicy(write_gate=gate))

    def lose_the_lease() -> None:
        gate.open = False  # the renew deadline passes while the first attempt is under way

    api_client.recorder.on_send = lose_the_lease
    with pytest.raises(NotLeaderError):
        client.request("PUT", PATH, body={})
    assert [method for method, _ in api_client.sent] == ["PUT"], "refused before the second send"
    assert gate.asked == 2


@pytest.mark.parametrize("body", [b"<html>a proxy's error page</html>", b'{"kind": "Secret", "da'])
def test_a_success_whose_body_is_not_json_is_an_unavailable_server(body):
    api_client = RecordingApiClient()
    api_client.recorder.body = body
    with pytest.raises(UnavailableError, match="not JSON"):
        KubeClient(api_client).request("GET", PATH)


class RecordingProxyManager(urllib3.ProxyManager):
    def __init__(self, pool: RecordingPool) -> None:
        super().__init__("http://proxy.example:3128")
        self.urlopen = pool.urlopen  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("host", "through_proxy", "sent_to"),
    [
        ("https://127.0.0.1:6443", False, PATH + "?limit=1"),
        # A server behind a path (a cluster reached through a management proxy, say).
        ("https://rancher.example/k8s/clusters/c-1/", False, "/k8s/clusters/c-1" + PATH + "?limit=1"),
        # Through an HTTP proxy the pool manager needs the whole URL.
        ("https://10.0.0.1:6443", True, "https://10.0.0.1:6443" + PATH + "?limit=1"),
    ],
)
def test_requests_go_to_the_servers_pool_or_through_the_proxy(host, through_proxy, sent_to):
    api_client = RecordingApiClient(host=host)
    if through_proxy:
        api_client.rest_client.pool_manager = RecordingProxyManager(api_client.recorder)
    KubeClient(api_client).request("GET", PATH, query={"limit": 1, "continue": None})
    assert api_client.recorder.urls == [sent_to]


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        (None, None),
        ({"data": {"a": "b"}}, b'{"data": {"a": "b"}}'),
        # Already serialised, e.g. a server-side apply patch: sent as it is, not quoted again.
        ('{"kind": "Secret"}', b'{"kind": "Secret"}'),
        (b"raw", b"raw"),
    ],
)
def test_bodies_are_sent_as_json_unless_already_serialised(body, sent):
    api_client = RecordingApiClient()
    KubeClient(api_client).request("PATCH", PATH, body=body, content_type="application/apply-patch+yaml")
    assert api_client.recorder.bodies == [sent]


def _kubeconfig(tmp_path, users: list[dict[str, Any]], current: str = "main") -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "admin"}},
                     {"name": "other", "context": {"cluster": "c", "user": "plain"}}],
        "users": users,
    }))
    return str(path)


@pytest.mark.parametrize(
    ("users", "context", "expected"),
    [
        ([{"name": "admin", "user": {"token": "t", "as": "alice"}}], None, Impersonation("alice")),
        ([{"name": "admin", "user": {"as": "alice", "as-groups": ["g1", "g2"]}}], None,
         Impersonation("alice", ("g1", "g2"))),
        ([{"name": "admin", "user": {"token": "t"}}], None, None),
        # The context's user counts, not the first user with `as`.
        ([{"name": "admin", "user": {"as": "alice"}}, {"name": "plain", "user": {"token": "t"}}], "other", None),
        ([{"name": "plain", "user": {"as": "bob"}}], "other", Impersonation("bob")),
    ],
)
def test_the_kubeconfig_users_impersonation_is_read_as_kubectl_reads_it(tmp_path, users, context, expected):
    assert kubeconfig_impersonation(_kubeconfig(tmp_path, users), context) == expected


def test_impersonation_sends_one_header_line_per_group():
    headers = Impersonation("alice", ("g1", "g2")).headers()
    assert headers["Impersonate-User"] == "alice"
    assert headers.getlist("Impersonate-Group") == ["g1", "g2"]
