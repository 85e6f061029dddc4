"""Namespace selection agrees with Kubernetes' own label selectors, the API server as oracle.

Forty namespaces get random labels once; for each generated selector the server
lists the namespaces it matches (`labelSelector`, the selector's string form) and
`matches_label_selector` must pick exactly the same ones.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client

from regcred.models import LabelSelector, LabelSelectorRequirement
from regcred.planning.selection import matches_label_selector

pytestmark = pytest.mark.e2e

NAMESPACE_COUNT = 40
KEYS = ("tier", "team", "env", "example.com/zone")
VALUES = ("a", "b", "c", "")
SET_VALUES = ("a", "b", "c")  # the string form cannot spell an empty value inside ( )
RUN_LABEL = "test.regcred.dev/selector-oracle"


@pytest.fixture(scope="module")
def labelled_namespaces(cluster) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """Namespaces with random labels (seeded, so a failure can be replayed); name -> labels."""
    run = uuid.uuid4().hex[:8]
    rng = random.Random(run)
    namespaces = {}
    for index in range(NAMESPACE_COUNT):
        labels = {key: rng.choice(VALUES) for key in KEYS if rng.random() < 0.6}
        name = f"sel-{run}-{index}"
        cluster.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={**labels, RUN_LABEL: run}))
        )
        namespaces[name] = labels
    yield run, namespaces
    for name in namespaces:
        cluster.core.delete_namespace(name)


requirements = st.one_of(
    st.builds(
        LabelSelectorRequirement,
        key=st.sampled_from(KEYS),
        operator=st.sampled_from(["In", "NotIn"]),
        values=st.lists(st.sampled_from(SET_VALUES), min_size=1, max_size=3),
    ),
    st.builds(LabelSelectorRequirement, key=st.sampled_from(KEYS), operator=st.sampled_from(["Exists", "DoesNotExist"])),
)
selectors = st.builds(
    LabelSelector,
    match_labels=st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2),
    match_expressions=st.lists(requirements, max_size=3),
)


def selector_string(selector: LabelSelector) -> str:
    """The `labelSelector` query form, as metav1.LabelSelectorAsSelector writes it."""
    parts = [f"{key}={value}" for key, value in selector.match_labels.items()]
    for requirement in selector.match_expressions:
        values = ",".join(sorted(set(requirement.values)))
        parts.append(
            {
                "In": f"{requirement.key} in ({values})",
                "NotIn": f"{requirement.key} notin ({values})",
                "Exists": requirement.key,
                "DoesNotExist": f"!{requirement.key}",
            }[requirement.operator]
        )
    return ",".join(parts)


@settings(max_examples=200, deadline=None)
@given(selector=selectors)
def test_selection_matches_the_api_servers_label_selector(cluster, labelled_namespaces, selector) -> None:
    run, namespaces = labelled_namespaces
    query = ",".join(part for part in (selector_string(selector), f"{RUN_LABEL}={run}") if part)
    by_server = {ns.metadata.name for ns in cluster.core.list_namespace(label_selector=query).items}
    by_us = {name for name, labels in namespaces.items() if matches_label_selector(selector, labels)}
    assert by_us == by_server, f"selector {query!r}"
