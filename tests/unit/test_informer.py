"""Informer against a scripted API: list, watch, bookmarks, 410 Gone and dropped streams."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from regcred.errors import GoneError, UnavailableError
from regcred.kube.client import METADATA_LIST, METADATA_OBJECT
from regcred.kube.informer import METADATA_PAGE_SIZE, Informer, by_name

PATH = "/api/v1/namespaces"
SETTLE_SECONDS = 5.0


def obj(name: str, version: str, team: str = "a") -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version, "labels": {"team": team}}}


def event(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": item}


def bookmark(version: str) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": version}}}


def page(items: list[dict[str, Any]], version: str, next_page: str | None = None) -> dict[str, Any]:
    return {"items": items, "metadata": {"resourceVersion": version, "continue": next_page}}


class ScriptedApi:
    """Stands in for KubeClient: answers lists and watches from a script, records each query.

    `lists` holds one list of pages per list call. Each entry of `watches` is one
    stream: events, then optionally an exception that ends it (a dropped connection,
    a 410); a stream without one ends as the server ends a watch on time. Once the
    script is spent, a watch stays open until the informer aborts it.
    """

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self._lists = list(lists)
        self._watches = list(watches)
        self.calls: list[tuple[str, Mapping[str, Any]]] = []
        self.accepts: list[str | None] = []
        self.script_spent = threading.Event()

    def request(self, method: str, path: str, *, query: Mapping[str, Any], accept: str | None) -> dict[str, Any]:
        assert (method, path) == ("GET", PATH)
        self.calls.append(("list", query))
        self.accepts.append(accept)
        pages = self._lists[0]
        index = 0 if query["continue"] is None else int(query["continue"])
        if index == len(pages) - 1:
            self._lists.pop(0)
        return pages[index]

    def watch(
        self,
        path: str,
        query: Mapping[str, Any],
        read_timeout: float,
        on_open: Callable[[Callable[[], None]], None],
        accept: str | None,
    ) -> Iterator[dict[str, Any]]:
        assert path == PATH
        self.calls.append(("watch", query))
        self.accepts.append(accept)
        aborted = threading.Event()
        on_open(aborted.set)
        if not self._watches:
            self.script_spent.set()
            aborted.wait()
            return
        for step in self._watches.pop(0):
            if isinstance(step, Exception):
                raise step
            yield step

    def versions(self) -> list[tuple[str, str | None]]:
        """Each call in order, with the resourceVersion a watch started from."""
        return [(kind, query.get("resourceVersion")) for kind, query in self.calls]


def run(api: ScriptedApi) -> tuple[Informer[str, str], list[tuple[str, str | None, str | None]]]:
    """An informer of name -> team label, run until the script is spent; and its changes."""
    changes: list[tuple[str, str | None, str | None]] = []
    client: Any = api  # the two calls an informer makes
    informer: Informer[str, str] = Informer(
        client,
        PATH,
        key=by_name,
        project=lambda item: item["metadata"]["labels"]["team"],
        on_change=lambda key, old, new: changes.append((key, old, new)),
        watch_seconds=60,
    )
    informer.start()
    try:
        assert api.script_spent.wait(SETTLE_SECONDS), f"the informer stopped short: {api.calls}"
    finally:
        informer.stop()
        informer.join(SETTLE_SECONDS)
    assert not informer.alive()
    return informer, changes


def test_list_fills_the_cache_across_pages_then_watch_events_are_applied():
    api = ScriptedApi(
        lists=[[page([obj("x", "1")], "", next_page="1"), page([obj("y", "2")], "3")]],
        watches=[[
            event("ADDED", obj("z", "4")),
            event("MODIFIED", obj("x", "5", team="b")),
            event("MODIFIED", obj("y", "6")),  # no change in the projection: no callback
            event("DELETED", obj("y", "7")),
        ]],
    )
    informer, changes = run(api)
    assert informer.synced.is_set()
    assert informer.snapshot() == {"x": "b", "z": "a"}
    assert changes == [
        ("x", None, "a"), ("y", None, "a"),
        ("z", None, "a"), ("x", "a", "b"), ("y", "a", None),
    ]
    assert api.versions() == [("list", None), ("list", None), ("watch", "3"), ("watch", "7")]


def test_a_bookmark_advances_the_resource_version_without_a_change():
    api = ScriptedApi(
        lists=[[page([obj("x", "1")], "1")]],
        watches=[[bookmark("40")], [bookmark("41")]],
    )
    informer, changes = run(api)
    assert changes == [("x", None, "a")]
    assert api.versions() == [("list", None), ("watch", "1"), ("watch", "40"), ("watch", "41")]
    assert informer.relists == 0


def test_410_gone_relists_and_reports_what_changed_meanwhile_including_deletions():
    api = ScriptedApi(
        lists=[
            [page([obj("x", "1"), obj("y", "2"), obj("z", "3")], "3")],
            [page([obj("x", "1"), obj("z", "8", team="b"), obj("w", "9")], "9")],
        ],
        watches=[[GoneError("too old resource version", 410)]],
    )
    informer, changes = run(api)
    assert informer.snapshot() == {"x": "a", "z": "b", "w": "a"}
    assert changes[3:] == [("y", "a", None), ("z", "a", "b"), ("w", None, "a")]
    assert informer.relists == 1
    assert api.versions() == [("list", None), ("watch", "3"), ("list", None), ("watch", "9")]


@pytest.mark.parametrize(
    "ending",
    [
        pytest.param([], id="the server ends the watch"),
        pytest.param([UnavailableError("connection reset")], id="the stream drops"),
    ],
)
def test_a_watch_that_ends_resumes_from_the_last_version_seen_without_a_relist(ending):
    api = ScriptedApi(
        lists=[[page([obj("x", "1")], "1")]],
        watches=[
            [event("ADDED", obj("y", "5")), bookmark("6"), *ending],
            [event("DELETED", obj("x", "7"))],
        ],
    )
    informer, changes = run(api)
    assert informer.snapshot() == {"y": "a"}
    assert changes == [("x", None, "a"), ("y", None, "a"), ("x", "a", None)]
    assert api.versions() == [("list", None), ("watch", "1"), ("watch", "6"), ("watch", "7")]
    assert informer.relists == 0


def loaded(items: list[dict[str, Any]], version: str = "10") -> Informer[str, str]:
    """An informer of name -> team label, indexed by team, filled by one list."""
    client: Any = ScriptedApi(lists=[[page(items, version)]], watches=[])
    informer: Informer[str, str] = Informer(
        client, PATH, key=by_name, project=lambda item: item["metadata"]["labels"]["team"],
        indexers={"team": lambda key, team: (team,)}, watch_seconds=60,
    )
    informer.load()
    return informer


def test_an_index_follows_every_change_of_the_values_it_maps():
    informer = loaded([obj("x", "1"), obj("y", "2"), obj("z", "3", team="b")])
    assert sorted(informer.by_index("team", "a")) == ["a", "a"]
    assert sorted(informer.index_values("team")) == ["a", "b"]
    informer.observe(obj("x", "11", team="b"))
    informer.forget("y")
    assert informer.by_index("team", "a") == []
    assert informer.by_index("team", "b") == ["b", "b"]
    assert informer.index_values("team") == ["b"]


@pytest.mark.parametrize(
    ("written_version", "cached_after"),
    [
        ("4", "a"),  # a response older than the cached version: ignored
        ("5", "b"),  # the same version: applied (it is what the cache holds)
        ("6", "b"),  # newer: applied
        ("", "b"),  # no comparable version: applied
    ],
)
def test_write_through_never_replaces_a_newer_cached_version(written_version, cached_after):
    informer = loaded([obj("x", "5")])
    informer.observe(obj("x", written_version, team="b"))
    assert informer.get("x") == cached_after


# -- no resurrection ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("late_version", "present"),
    [
        ("11", False),  # the create's response, after the watch reported the deletion
        ("12", False),  # at the deletion's version: still the deleted object
        ("13", True),  # a newer write: the name was created again
    ],
)
def test_a_write_through_after_a_watched_deletion_never_brings_the_object_back(late_version, present):
    api = ScriptedApi(
        lists=[[page([], "10")]],
        watches=[[event("ADDED", obj("x", "11")), event("DELETED", obj("x", "12"))]],
    )
    informer, changes = run(api)
    informer.observe(obj("x", late_version))
    assert ("x" in informer.snapshot()) is present
    assert changes == [("x", None, "a"), ("x", "a", None)]  # write-through notifies nobody


def test_a_write_through_after_a_relist_that_lost_the_object_never_brings_it_back():
    api = ScriptedApi(
        lists=[[page([obj("x", "5")], "10")], [page([], "20")]],
        watches=[[GoneError("too old resource version", 410)]],
    )
    informer, _ = run(api)
    informer.observe(obj("x", "15"))  # read before the list at 20, which no longer has it
    assert informer.snapshot() == {}


@pytest.mark.parametrize(
    ("late_version", "present"),
    [
        ("5", False),  # read before our delete (a GET, a create's response)
        ("7", False),  # the version we deleted
        ("8", True),  # created again since
    ],
)
def test_a_write_through_after_our_own_delete_never_brings_the_object_back(late_version, present):
    informer = loaded([obj("x", "5")], version="6")
    informer.observe(obj("x", "7"))  # our update, still ahead of the stream
    informer.forget("x", "7")  # then our delete, with that version as its precondition
    informer.observe(obj("x", late_version))
    assert ("x" in informer.snapshot()) is present


def test_once_the_stream_has_passed_our_delete_it_still_refuses_what_came_before():
    api = ScriptedApi(lists=[[page([obj("x", "5")], "6")]], watches=[[bookmark("9")]])
    informer, _ = run(api)
    informer.forget("x", "7")
    informer.observe(obj("x", "8"))
    assert informer.snapshot() == {}


# -- metadata only -----------------------------------------------------------------------
def test_a_metadata_only_informer_asks_for_partial_object_metadata_in_lists_and_watches():
    api = ScriptedApi(lists=[[page([obj("x", "1")], "1")]], watches=[[bookmark("2")]])
    client: Any = api
    informer: Informer[str, str] = Informer(
        client, PATH, key=by_name, project=lambda item: item["metadata"]["resourceVersion"],
        watch_seconds=60, metadata_only=True,
    )
    informer.start()
    try:
        assert api.script_spent.wait(SETTLE_SECONDS)
    finally:
        informer.stop()
        informer.join(SETTLE_SECONDS)
    assert api.accepts[:3] == [METADATA_LIST, METADATA_OBJECT, METADATA_OBJECT]
    assert [query["limit"] for kind, query in api.calls if kind == "list"] == [METADATA_PAGE_SIZE]


def test_a_value_from_metadata_keeps_what_was_read_at_the_same_version():
    client: Any = ScriptedApi(lists=[[page([], "1")]], watches=[])
    informer: Informer[str, tuple[str, str | None]] = Informer(
        client, PATH, key=by_name,
        project=lambda item: (item["metadata"]["resourceVersion"], item.get("data")),
        carry_over=lambda cached, listed: listed if listed[1] is not None else (listed[0], cached[1]),
        watch_seconds=60,
    )
    informer.load()
    informer.observe({**obj("x", "5"), "data": "digest"})  # our write's response, data and all
    informer.observe(obj("x", "5"))  # the same version from metadata (its watch event)
    assert informer.get("x") == ("5", "digest")
    informer.observe(obj("x", "6"))  # someone else's write: data unknown
    assert informer.get("x") == ("6", None)


# -- the echo of our own writes -----------------------------------------------------
CHANGED_BY_SOMEONE = event("MODIFIED", obj("x", "12", team="b"))


@pytest.mark.parametrize(
    ("response_first", "stream", "written", "expected"),
    [
        # the echo of our create beats its response: no change to plan again for
        (False, [event("ADDED", obj("x", "11"))], "11", []),
        # the response first, then its echo: the same value, no change either
        (True, [event("ADDED", obj("x", "11"))], "11", []),
        # someone else changed it after our write: one change, from what we wrote
        (False, [event("ADDED", obj("x", "11")), CHANGED_BY_SOMEONE], "11", [("x", "a", "b")]),
        (True, [event("ADDED", obj("x", "11")), CHANGED_BY_SOMEONE], "11", [("x", "a", "b")]),
        # our write failed (no response) while someone else created it: their change
        (False, [event("ADDED", obj("x", "11"))], None, [("x", None, "a")]),
        # someone deleted what we had just written
        (False, [event("ADDED", obj("x", "11")), event("DELETED", obj("x", "12"))], "11",
         [("x", "a", None)]),
    ],
)
def test_a_write_holds_the_change_callback_of_its_own_echo(response_first, stream, written, expected):
    api = ScriptedApi(lists=[[page([], "10")]], watches=[stream])
    changes: list[tuple[str, str | None, str | None]] = []
    client: Any = api
    informer: Informer[str, str] = Informer(
        client, PATH, key=by_name, project=lambda item: item["metadata"]["labels"]["team"],
        on_change=lambda key, old, new: changes.append((key, old, new)), watch_seconds=60,
    )
    with informer.writing("x"):
        if response_first:
            informer.observe(obj("x", written))
        informer.start()
        assert api.script_spent.wait(SETTLE_SECONDS)
        assert changes == []  # held while the write is in flight
        if written is not None and not response_first:
            informer.observe(obj("x", written))
    informer.stop()
    informer.join(SETTLE_SECONDS)
    assert changes == expected
