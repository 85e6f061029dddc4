"""A thin JSON client over the official kubernetes client's connection and auth.

Objects are plain dicts: the generated models cost memory and CPU we don't need
at thousands of namespaces. This module is where `ApiException` and transport
errors become the project's `KubeError` tree.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from regcred.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    KubeError,
    NotFoundError,
    NotLeaderError,
    UnavailableError,
)

__all__ = [
    "MERGE_PATCH",
    "METADATA_LIST",
    "METADATA_OBJECT",
    "REQUEST_TIMEOUT_SECONDS",
    "STRATEGIC_MERGE_PATCH",
    "ClientPolicy",
    "Impersonation",
    "JsonObject",
    "KubeClient",
    "connection_params",
    "kubeconfig_impersonation",
    "load_api_client",
    "object_path",
    "translate",
]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
# What the API server sends for these Accept values: metadata only (PartialObjectMetadata),
# never `data`, `spec` or `status`. Lists take the first, watch events the second.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_OBJECT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
REQUEST_TIMEOUT_SECONDS = 30.0
WATCH_CONNECT_TIMEOUT_SECONDS = 10.0
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTH_REFRESH_SECONDS = 60.0
# urllib3 retries a failed connection, and a read error on GET and on PUT/DELETE, with a
# fresh timeout and without asking the write gate again. Only reads are retried here:
# callers retry writes themselves, through the gate.
TRANSPORT_RETRIES = urllib3.Retry(total=3, connect=0, allowed_methods=frozenset({"GET", "HEAD"}))


@dataclass(frozen=True)
class ClientPolicy:
    """How a process's API requests behave; the runner sets it, every `KubeClient` applies it.

    `write_gate` is asked right before each write is sent; when it says False the write
    raises `NotLeaderError` instead. None lets every write through.
    """

    request_timeout: float = REQUEST_TIMEOUT_SECONDS
    write_gate: Callable[[], bool] | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Impersonation:
    """Whom to act as, as kubectl's --as and --as-group send it: the server checks the
    caller may impersonate, then authorizes every request as that user alone."""

    user: str
    groups: tuple[str, ...] = ()

    def headers(self) -> urllib3.HTTPHeaderDict:
        headers = urllib3.HTTPHeaderDict({"Impersonate-User": self.user})
        for group in self.groups:
            # One header line per group: the API server does not split a list.
            headers.add("Impersonate-Group", group)
        return headers


def kubeconfig_impersonation(kubeconfig: str | None = None, context: str | None = None) -> Impersonation | None:
    """The `as` and `as-groups` of the kubeconfig user that `load_api_client` logs in as.

    kubectl acts as that user; the client library ignores both and would act as the
    identity that may impersonate, with its wider rights.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    if path is None:
        if context is None and _in_cluster():
            return None
        path = "~/.kube/config"
    try:
        document = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return None
    wanted = context or document.get("current-context")
    chosen = next((c.get("context") or {} for c in document.get("contexts") or [] if c.get("name") == wanted), {})
    user = next((u.get("user") or {} for u in document.get("users") or [] if u.get("name") == chosen.get("user")), {})
    if not user.get("as"):
        return None
    return Impersonation(str(user["as"]), tuple(str(group) for group in user.get("as-groups") or ()))


def _in_cluster() -> bool:
    try:
        k8s_config.load_incluster_config(client_configuration=k8s_client.Configuration())
    except k8s_config.ConfigException:
        return False
    return True


def load_api_client(
    kubeconfig: str | None = None, context: str | None = None, connections: int | None = None
) -> k8s_client.ApiClient:
    """An ApiClient: the explicit kubeconfig, else $KUBECONFIG's first file; with neither,
    the in-cluster config when in a Pod, else ~/.kube/config.

    `connections` is how many connections to keep open for reuse: at least the requests
    in flight at once, watches included. Beyond it, each extra connection is closed after
    its request, and the next one pays a new TLS handshake.
    """
    # Read $KUBECONFIG now: the client library reads it once, at its import.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    configuration = k8s_client.Configuration()
    configuration.retries = TRANSPORT_RETRIES
    if connections is not None:
        configuration.connection_pool_maxsize = connections
    if kubeconfig is None and context is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return k8s_client.ApiClient(configuration)
        except k8s_config.ConfigException:
            pass
    k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    return k8s_client.ApiClient(configuration)


def _api_message(status: int, body: bytes | str | None) -> str:
    """The API server's own message (a metav1.Status), which never echoes Secret data."""
    try:
        document = json.loads(body or b"{}")
        return str(document.get("message") or document.get("reason") or f"HTTP {status}")
    except (ValueError, AttributeError):
        return f"HTTP {status}"


def translate(status: int, body: bytes | str | None, what: str) -> KubeError:
    """The project error for an API response status."""
    message = f"{what}: {_api_message(status, body)}"
    if status == 404:
        return NotFoundError(message, status)
    if status == 409:
        return ConflictError(message, status)
    if status in (401, 403):
        return ForbiddenError(message, status)
    if status == 410:
        return GoneError(message, status)
    if status == 429 or status >= 500:
        return UnavailableError(message, status)
    return KubeError(message, status)


class KubeClient:
    """JSON requests against one API server."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        on_error: Callable[[str], None] | None = None,
        policy: ClientPolicy = ClientPolicy(),
        impersonate: Impersonation | None = None,
    ) -> None:
        self.api_client = api_client
        # Told the HTTP verb of every failed request (for metrics).
        self._on_error = on_error
        self.policy = policy
        self._base_headers = urllib3.HTTPHeaderDict({
            "Accept": "application/json",
            "User-Agent": policy.user_agent or api_client.user_agent,
        })
        if impersonate is not None:
            self._base_headers.extend(impersonate.headers())
        self._auth_lock = threading.Lock()
        self._auth_header: str | None = None
        self._auth_read_at: float | None = None
        self._urlopen, self._url_prefix = _opener(api_client)

    def _failed(self, method: str, error: KubeError) -> KubeError:
        if self._on_error is not None:
            self._on_error(method)
        return error

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: float | tuple[float, float],
        accept: str | None = None,
    ) -> urllib3.BaseHTTPResponse:
        headers = self._base_headers.copy()
        if accept:
            headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        url = self._url_prefix + path + (f"?{urlencode(params)}" if params else "")
        payload = _encoded(body)
        if isinstance(timeout, tuple):
            urllib3_timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        else:
            urllib3_timeout = urllib3.Timeout(total=timeout)
        try:
            response = self._send_once(method, path, url, headers, payload, urllib3_timeout, fresh=False)
            if response.status == 401:
                # Not acted on: an expired or rotated token. Once more, with it read afresh.
                response.drain_conn()
                response = self._send_once(method, path, url, headers, payload, urllib3_timeout, fresh=True)
            return response
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise self._failed(method, UnavailableError(f"{method} {path}: {type(error).__name__}")) from None

    def _send_once(
        self, method: str, path: str, url: str, headers: urllib3.HTTPHeaderDict, payload: bytes | None,
        timeout: urllib3.Timeout, fresh: bool,
    ) -> urllib3.BaseHTTPResponse:
        """Send once, with the credentials read afresh if `fresh`.

        Every send of a write asks the gate, a re-send too: time has passed since the last.
        """
        gate = self.policy.write_gate
        if method in WRITE_METHODS and gate is not None and not gate():
            raise NotLeaderError(
                f"{method} {path}: not sent, the leader Lease is not confirmed within the renew deadline"
            )
        authorization = self._authorization(refresh=fresh)
        if authorization:
            headers = headers.copy()
            headers["Authorization"] = authorization
        return self._urlopen(method, url, body=payload, headers=headers, timeout=timeout, preload_content=False)

    def _authorization(self, refresh: bool) -> str | None:
        """The Authorization header (a bearer token, or None with client certificates).

        The client library re-reads the kubeconfig, or the in-cluster token file, before
        every request; here that happens at most once per AUTH_REFRESH_SECONDS, and
        after a 401, which is how an expired or rotated token shows.
        """
        now = time.monotonic()
        with self._auth_lock:
            if refresh or self._auth_read_at is None or now - self._auth_read_at >= AUTH_REFRESH_SECONDS:
                self._auth_header = self.api_client.configuration.get_api_key_with_prefix(
                    "BearerToken", alias="authorization"
                )
                self._auth_read_at = now
            return self._auth_header

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
        accept: str | None = None,
    ) -> JsonObject:
        """One request; returns the decoded JSON body or raises a `KubeError`.

        `timeout` bounds the whole request; by default the policy's request timeout.
        `accept` asks for another representation (`METADATA_LIST`); JSON by default.
        """
        if body is not None and content_type is None:
            content_type = "application/json"
        timeout = self.policy.request_timeout if timeout is None else timeout
        response = self._send(method, path, query, body, content_type, timeout, accept)
        try:
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise self._failed(method, UnavailableError(f"{method} {path}: {type(error).__name__}")) from None
        if not 200 <= response.status < 300:
            raise self._failed(method, translate(response.status, data, f"{method} {path}"))
        try:
            return json.loads(data) if data else {}
        except ValueError:
            # Not the API server's answer (a proxy's page, a body cut short): like no answer.
            not_json = UnavailableError(f"{method} {path}: the answer is not JSON")
            raise self._failed(method, not_json) from None

    def watch(
        self,
        path: str,
        query: Mapping[str, Any],
        read_timeout: float,
        on_open: Callable[[Callable[[], None]], None] | None = None,
        accept: str | None = None,
    ) -> Iterator[JsonObject]:
        """Stream watch events; ends when the server closes the stream. ERROR events raise.

        `on_open` receives a function that aborts the stream from another thread;
        `accept` asks for another representation of the events' objects (`METADATA_OBJECT`).
        """
        connect_timeout = min(WATCH_CONNECT_TIMEOUT_SECONDS, self.policy.request_timeout)
        response = self._send(
            "GET", path, {**query, "watch": "true"}, None, None, (connect_timeout, read_timeout), accept
        )
        if on_open is not None:
            on_open(response.shutdown)
        try:
            if not 200 <= response.status < 300:
                raise translate(response.status, response.read(), f"WATCH {path}")
            pending = b""
            for chunk in response.stream(65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object", {})
                        raise translate(int(status.get("code") or 500), json.dumps(status), f"WATCH {path}")
                    yield event
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise UnavailableError(f"WATCH {path}: {type(error).__name__}") from None
        finally:
            response.release_conn()


def _encoded(body: Any) -> bytes | None:
    """A request body: text already serialised (a YAML apply patch, say) as it is; objects as JSON."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _opener(api_client: k8s_client.ApiClient) -> tuple[Callable[..., urllib3.BaseHTTPResponse], str]:
    """How to send a request, and what goes before each API path.

    Straight to the API server's connection pool when there is no proxy: the library's
    own request path (its REST wrapper, the pool manager's URL parsing and pool lookup
    on every call) cost a fifth of the CPU of each request when measured. The pool is
    the library's, so TLS, client certificates and pool size are as it configured them.
    Through a proxy, the pool manager's full-URL path, which knows how to use it.
    """
    manager = api_client.rest_client.pool_manager
    host = api_client.configuration.host.rstrip("/")
    if isinstance(manager, urllib3.ProxyManager) or not isinstance(manager, urllib3.PoolManager):
        return manager.urlopen, host
    return manager.connection_from_url(host).urlopen, urlsplit(host).path


def object_path(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    """The REST path of a collection or an object."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace is not None:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{plural}"
    if name is not None:
        base += f"/{quote(name)}"
    return base


def connection_params(api_client: k8s_client.ApiClient) -> dict[str, Any]:
    """Plain connection settings of a loaded client, for other libraries to log in the same way."""
    configuration = api_client.configuration
    authorization = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
    scheme, _, token = (authorization or "").partition(" ")
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
        "scheme": scheme or None,
        "token": token or None,
    }
