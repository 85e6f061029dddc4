"""The data of the source Secrets that credentials reference, read when a pass needs it.

The source caches keep only each Secret's resourceVersion, so a Helm release or any other
Secret in a source namespace costs a few bytes however large it is. The data of a Secret
a credential references is read (one GET) when a pass resolves that credential and the
cache shows a version newer than the one read; a read no older than the cache is current.

Thread ownership: the read data is guarded by this object's lock; reads happen outside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from regcred.kube.client import KubeClient
from regcred.kube.reads import read_source_secret
from regcred.planning.sources import SourceSecret

__all__ = ["SourceData"]

Key = tuple[str, str]
# The resourceVersion a source cache holds for a Secret; None when it holds none.
VersionOf = Callable[[Key], str | None]


def _not_older(read: str, cached: str) -> bool:
    """resourceVersions are opaque, but an etcd-backed API server writes revisions there."""
    if read.isdigit() and cached.isdigit():
        return int(read) >= int(cached)
    return read == cached


class SourceData:
    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._read: dict[Key, tuple[SourceSecret, str]] = {}

    def refresh(self, keys: Iterable[Key], version_of: VersionOf) -> None:
        """Read each Secret the cache holds whose data is older than the cache's version."""
        for key in keys:
            cached = version_of(key)
            if cached is None:
                self.discard(key)
                continue
            with self._lock:
                held = self._read.get(key)
            if held is not None and _not_older(held[1], cached):
                continue
            found = read_source_secret(self._client, *key)
            with self._lock:
                if found is None:
                    self._read.pop(key, None)
                else:
                    self._read[key] = found

    def current(self, version_of: VersionOf) -> dict[Key, SourceSecret]:
        """The data read that is no older than what the caches hold (deleted Secrets left out)."""
        with self._lock:
            held = list(self._read.items())
        current = {}
        for key, (secret, version) in held:
            cached = version_of(key)
            if cached is not None and _not_older(version, cached):
                current[key] = secret
        return current

    def discard_older(self, key: Key, cached: str | None) -> None:
        """Drop what was read of a Secret once the cache holds a newer version, or none."""
        with self._lock:
            held = self._read.get(key)
            if held is not None and (cached is None or not _not_older(held[1], cached)):
                del self._read[key]

    def discard(self, key: Key) -> None:
        with self._lock:
            self._read.pop(key, None)
