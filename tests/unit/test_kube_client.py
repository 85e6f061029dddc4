"""KubeClient applies its ClientPolicy: the write gate, the request timeout, the user agent."""

from __future__ import annotations

import io
from typing import Any

import pytest
import urllib3
from kubernetes import client as k8s_client

from regcred.errors import NotLeaderError
from regcred.kube.client import ClientPolicy, KubeClient

PATH = "/api/v1/namespaces/team-a/secrets/pull"


class RecordingApiClient(k8s_client.ApiClient):
    """A real ApiClient whose transport only records what would have been sent."""

    def __init__(self) -> None:
        super().__init__(k8s_client.Configuration(host="https://127.0.0.1:6443"))
        self.sent: list[tuple[str, Any]] = []

    def call_api(self, method: str, url: str, *_: Any, _request_timeout: Any = None, **__: Any) -> Any:
        self.sent.append((method, _request_timeout))
        return urllib3.HTTPResponse(body=io.BytesIO(b"{}"), status=200, preload_content=False)


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
    assert [timeout for _, timeout in api_client.sent] == [1.5, 4.0]
    assert api_client.user_agent == "regcred-operator/test (a)"
