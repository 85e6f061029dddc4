"""List-then-watch caches of projected objects, each in its own thread.

An informer lists a collection (paginated), keeps only a small projection of
each object, then watches from the list's resourceVersion with bookmarks. A
410 Gone (expired resourceVersion) re-lists and reports every difference, so
no change in between is missed. `synced` is set after the first full list:
nothing may plan removals from an empty cache.

Secondary indexes (client-go's indexers) map each cached value to index values, so
"the replicas in namespace X" or "the credentials that read Secret Y" are lookups,
not scans.

A write the operator makes (`writing`) holds the key's change callbacks until its
response is written through: the watch echo of that very write often beats the response,
and would call back for a change the writer already knows of. A held change calls back
when the write ends, unless every version the stream delivered meanwhile is one the
operator wrote (a failed write, or anyone else's change, still calls back).

Write-through (`observe`) never replaces a newer cached version, and never brings back
a deleted object: a key absent from the cache is only written through at a version
newer than everything the stream has delivered (a deletion included), or than the
version the operator itself deleted (a tombstone, kept until the stream passes it).

With `metadata_only`, lists and watches ask the API server for PartialObjectMetadata:
an object's data never reaches the process, however large (Secrets: up to 1 MiB each).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from regcred.errors import GoneError, KubeError
from regcred.kube.client import METADATA_LIST, METADATA_OBJECT, JsonObject, KubeClient

__all__ = ["Indexer", "Informer", "by_name", "by_namespace", "by_namespace_and_name"]

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

# Objects per list page. A page is held whole while it is decoded, so with objects of up
# to 1 MiB (Secrets, ConfigMaps) or 256 KiB of annotations each, this bounds the peak.
LIST_PAGE_SIZE = 100
# Metadata is a few KiB an object at most (annotations are capped at 256 KiB in all).
METADATA_PAGE_SIZE = 500
MAX_BACKOFF_SECONDS = 30.0

# (key, old value or None, new value or None)
ChangeCallback = Callable[[Any, Any, Any], None]
# A value's index values, e.g. its namespace, or the Secrets a credential reads.
Indexer = Callable[[Any, Any], Iterable[str]]


class Informer(Generic[K, V]):
    """A thread-safe cache of `project(obj)` by `key(obj)` for one collection."""

    def __init__(
        self,
        client: KubeClient,
        path: str,
        *,
        key: Callable[[JsonObject], K],
        project: Callable[[JsonObject], V],
        on_change: ChangeCallback | None = None,
        label_selector: str | None = None,
        indexers: Mapping[str, Indexer] | None = None,
        name: str | None = None,
        watch_seconds: float,
        metadata_only: bool = False,
        carry_over: Callable[[V, V], V] | None = None,
    ) -> None:
        self._client = client
        # The server ends each watch after this; we resume from the last version seen.
        self.watch_seconds = watch_seconds
        self._path = path
        self._key = key
        self._project = project
        self._on_change = on_change
        self._label_selector = label_selector
        self._metadata_only = metadata_only
        self._page_size = METADATA_PAGE_SIZE if metadata_only else LIST_PAGE_SIZE
        # What a new value keeps of the cached one (e.g. a digest read at the same version).
        self._carry_over = carry_over
        self.name = name or path
        self._items: dict[K, V] = {}
        # The resourceVersion each cached value was projected from (0 when unknown).
        self._versions: dict[K, int] = {}
        # The list and watch have delivered every change up to this version: an object
        # absent from the cache at or below it does not exist (any more).
        self._complete_through = 0
        # Keys the operator deleted, with the version it deleted (write-through, before
        # the stream reports it), and the same as a heap to drop those the stream passed.
        self._tombstones: dict[K, int] = {}
        self._tombstone_heap: list[tuple[int, int, K]] = []
        self._tombstone_count = 0
        # Keys being written by the operator: how many writes are in flight, the versions
        # they wrote and the last value written, and the change callbacks held meanwhile
        # (the value before the first, the versions delivered).
        self._writes_in_flight: dict[K, int] = {}
        self._written: dict[K, set[int | None]] = {}
        self._written_value: dict[K, V] = {}
        self._held: dict[K, tuple[V | None, set[int | None]]] = {}
        self._indexers = dict(indexers or {})
        # index name -> index value -> keys
        self._indexes: dict[str, dict[str, set[K]]] = {name: {} for name in self._indexers}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._abort_watch: Callable[[], None] | None = None
        # Where the next watch starts: advanced by every event and bookmark, so a stream
        # that drops resumes where it stopped; None when the next step is a list.
        self._version: str | None = None
        self.synced = threading.Event()
        # Monotonic time of the last sign of life from the server (event, bookmark, list).
        self.last_heard = time.monotonic()
        self.relists = 0

    # -- reading ---------------------------------------------------------------
    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def snapshot(self) -> dict[K, V]:
        with self._lock:
            return dict(self._items)

    def by_index(self, index: str, value: str) -> list[V]:
        """The values that `index` maps to `value` (e.g. every object in one namespace)."""
        with self._lock:
            return [self._items[key] for key in self._indexes[index].get(value, ())]

    def index_values(self, index: str) -> list[str]:
        """Every value `index` currently maps some object to."""
        with self._lock:
            return list(self._indexes[index])

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # -- write-through ---------------------------------------------------------
    @contextmanager
    def writing(self, key: K) -> Iterator[None]:
        """Hold `key`'s change callbacks while the operator writes it (see the module's doc)."""
        with self._lock:
            self._writes_in_flight[key] = self._writes_in_flight.get(key, 0) + 1
            self._written.setdefault(key, set())
        try:
            yield
        finally:
            self._end_write(key)

    def _end_write(self, key: K) -> None:
        with self._lock:
            self._writes_in_flight[key] -= 1
            if self._writes_in_flight[key]:
                return
            del self._writes_in_flight[key]
            written = self._written.pop(key)
            written_value = self._written_value.pop(key, None)
            held = self._held.pop(key, None)
            if held is None:
                return
            old, delivered = held
            if delivered <= written:
                return  # only the echo of our own writes
            # A change since our write: told as one from what we wrote, which we know of.
            if written_value is not None:
                old = written_value
            new = self._items.get(key)
        self._notify(key, old, new)

    def observe(self, obj: JsonObject) -> None:
        """Record an object the operator just wrote, before its watch event arrives."""
        key, value, version = self._key(obj), self._project(obj), _resource_version(obj)
        with self._lock:
            if key in self._written:
                self._written[key].add(_version_number(version))
                self._written_value[key] = value
        self.observe_state(key, value, version)

    def observe_state(self, key: K, value: V, resource_version: str) -> None:
        """Record an already projected value the operator just read or wrote.

        Ignored when the cache already holds a newer version, or when the object was
        deleted since: a write's response or a read may reach us after the watch has
        delivered a later change, its deletion included.
        """
        self._apply(key, value, notify=False, version=_version_number(resource_version), write_through=True)

    def forget(self, key: K, resource_version: str | None = None) -> None:
        """Record a deletion the operator just made (or a read that found nothing).

        `resource_version` is the version it deleted, when known (a delete with that
        precondition); no write-through at or below it, or below the cached one, brings
        the object back.
        """
        deleted = _version_number(resource_version) or 0
        with self._lock:
            deleted = max(deleted, self._versions.get(key, 0))
            if deleted > max(self._complete_through, self._tombstones.get(key, 0)):
                self._tombstones[key] = deleted
                self._tombstone_count += 1
                heapq.heappush(self._tombstone_heap, (deleted, self._tombstone_count, key))
        self._apply(key, None, notify=False)

    # -- running ---------------------------------------------------------------
    def load(self) -> None:
        """Fill the cache with one list and no watch: a snapshot for one-shot tools."""
        self._list()
        self.synced.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"informer {self.name}", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def _read_grace(self) -> float:
        """How long past the watch's own end the server may still be heard from."""
        return min(30.0, self.watch_seconds)

    @property
    def silence_limit(self) -> float:
        """Silent longer than this, the watch is stuck: a healthy one hears an event,
        a bookmark or its own end within watch_seconds, and relists after a read timeout."""
        return self.watch_seconds + 3 * self._read_grace

    def stop(self) -> None:
        self._stop.set()
        if self._abort_watch is not None:
            try:
                self._abort_watch()
            except (ValueError, RuntimeError, OSError):
                # The last watch already ended (failed, or released its connection) and
                # the thread is backing off or listing; the stop flag ends it there.
                pass

    def _watch_opened(self, abort: Callable[[], None]) -> None:
        self._abort_watch = abort
        if self._stop.is_set():
            abort()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _apply(
        self,
        key: K,
        value: V | None,
        notify: bool = True,
        version: int | None = None,
        write_through: bool = False,
        through: int | None = None,
    ) -> None:
        """Set or remove one key. `through`: the stream has now delivered every change up
        to this version (set in the same lock, so no write-through slips in between)."""
        with self._lock:
            old = self._items.get(key)
            if through is not None:
                self._advance(through)
            if not self._newer(key, old, version, write_through):
                return
            if old is not None:
                self._unindex(key, old)
            if value is None:
                self._items.pop(key, None)
                self._versions.pop(key, None)
            else:
                if old is not None and self._carry_over is not None and self._versions.get(key) == version:
                    value = self._carry_over(old, value)
                self._items[key] = value
                self._versions[key] = version or 0
                self._index(key, value)
            if notify and key in self._writes_in_flight:
                first_old, delivered = self._held.get(key, (old, set()))
                self._held[key] = (first_old, delivered | {version})
                return
        if notify and old != value:
            self._notify(key, old, value)

    def _notify(self, key: K, old: V | None, new: V | None) -> None:
        if old == new or self._on_change is None:
            return
        try:
            self._on_change(key, old, new)
        except Exception:  # a bad callback must not kill the watch
            log.exception("informer %s: change callback failed", self.name)

    def _newer(self, key: K, old: V | None, version: int | None, write_through: bool) -> bool:
        """Whether a value at `version` may replace what the cache holds for `key` (lock held)."""
        if version is None:
            return True  # not ordered: never refused
        if version < self._versions.get(key, 0):
            return False
        # Absent and at or below what the stream delivered, or what we deleted: it was
        # deleted since it was read or written. Stream events are never refused here.
        return not (
            write_through
            and old is None
            and version <= max(self._complete_through, self._tombstones.get(key, 0))
        )

    def _advance(self, version: int) -> None:
        """The stream is complete through `version`; tombstones at or below it are not needed."""
        self._complete_through = max(self._complete_through, version)
        heap = self._tombstone_heap
        while heap and heap[0][0] <= self._complete_through:
            deleted, _, key = heapq.heappop(heap)
            if self._tombstones.get(key) == deleted:
                del self._tombstones[key]

    def _index(self, key: K, value: V) -> None:
        for name, indexer in self._indexers.items():
            for index_value in indexer(key, value):
                self._indexes[name].setdefault(index_value, set()).add(key)

    def _unindex(self, key: K, value: V) -> None:
        for name, indexer in self._indexers.items():
            index = self._indexes[name]
            for index_value in indexer(key, value):
                keys = index.get(index_value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[index_value]

    def _list(self) -> str:
        fresh: dict[K, tuple[V, int | None]] = {}
        token: str | None = None
        while True:
            page = self._client.request(
                "GET",
                self._path,
                query={"labelSelector": self._label_selector, "limit": self._page_size, "continue": token},
                accept=METADATA_LIST if self._metadata_only else None,
            )
            # A metadata list with no items has `"items": null`.
            for obj in page.get("items") or ():
                fresh[self._key(obj)] = (self._project(obj), _version_number(_resource_version(obj)))
            token = page.get("metadata", {}).get("continue")
            if not token:
                version = page["metadata"]["resourceVersion"]
                break
        with self._lock:
            previous = self._items
            # Set first: what the list lacks is gone, even for a write-through racing this.
            self._advance(_version_number(version) or 0)
        for key in previous.keys() - fresh.keys():
            self._apply(key, None)
        for key, (value, value_version) in fresh.items():
            self._apply(key, value, version=value_version)
        self.last_heard = time.monotonic()
        return version

    def _watch(self) -> None:
        query = {
            "labelSelector": self._label_selector,
            "resourceVersion": self._version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": max(1, round(self.watch_seconds)),
        }
        events = self._client.watch(
            self._path,
            query,
            read_timeout=self.watch_seconds + self._read_grace,
            on_open=self._watch_opened,
            accept=METADATA_OBJECT if self._metadata_only else None,
        )
        for event in events:
            if self._stop.is_set():
                break
            self.last_heard = time.monotonic()
            obj = event["object"]
            self._version = obj.get("metadata", {}).get("resourceVersion", self._version)
            kind = event["type"]
            version = _version_number(self._version)
            if kind == "BOOKMARK":
                if version is not None:
                    with self._lock:
                        self._advance(version)
                continue
            if kind == "DELETED":
                self._apply(self._key(obj), None, through=version)
            else:
                self._apply(self._key(obj), self._project(obj), version=version, through=version)
        self.last_heard = time.monotonic()  # the server ended the watch on time: alive

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self._version is None:
                    self._version = self._list()
                    if self.synced.is_set():
                        self.relists += 1
                    self.synced.set()
                self._watch()
                backoff = 0.5
            except GoneError:
                log.info("informer %s: resourceVersion expired, listing again", self.name)
                self._version = None
            except KubeError as error:
                if self._stop.is_set():
                    break
                log.warning("informer %s: %s; retrying in %.1fs", self.name, error, backoff)
                self._stop.wait(backoff * (1 + random.random() / 2))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            except Exception:
                log.exception("informer %s: unexpected failure; listing again", self.name)
                self._version = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def by_namespace_and_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    """Key of a namespaced object."""
    meta = obj["metadata"]
    return meta["namespace"], meta["name"]


def by_name(obj: Mapping[str, Any]) -> str:
    """Key of a cluster-scoped object."""
    return obj["metadata"]["name"]


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


def _version_number(resource_version: str | None) -> int | None:
    """resourceVersions are opaque to clients, but every API server backed by etcd
    writes its revision there; anything else is None: not ordered, never refused."""
    return int(resource_version) if resource_version and resource_version.isdigit() else None


def by_namespace(key: Any, value: Any) -> tuple[str]:
    """Indexer of namespaced objects keyed by (namespace, name)."""
    return (key[0],)
