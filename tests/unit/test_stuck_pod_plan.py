"""plan_stuck_pods: each condition that makes a stuck Pod restarted, reported, or left alone."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest

from regcred.kube.projections import pod_facts
from regcred.planning.stuckpods import PodFacts, PodOwner, plan_stuck_pods, stuck_pod_problems

PULL = "acme-pull"
REPLICA_SET = PodOwner("apps/v1", "ReplicaSet", "web-5d9c", "uid-rs")
ACCOUNTS = {"default": ("other", PULL), "builder": ("other",)}


def pod(**changes) -> PodFacts:
    """A Pod stuck in ImagePullBackOff for want of PULL, owned by a ReplicaSet: restartable."""
    base = PodFacts(
        namespace="team-a",
        name="web-5d9c-abcde",
        uid="uid-pod",
        resource_version="41",
        owner=REPLICA_SET,
        service_account="default",
        image_pull_secrets=(),
        waiting_reasons=("ImagePullBackOff",),
        deleting=False,
    )
    return dataclasses.replace(base, **changes)


class Case(NamedTuple):
    pod: PodFacts
    verdict: str  # "restart", "report: <reason>" or "ignore"
    deleted_uids: frozenset[str] = frozenset()
    restarted_owner_uids: frozenset[str] = frozenset()


CASES = {
    "backing off, owned by a ReplicaSet": Case(pod(), "restart"),
    "first pull error": Case(pod(waiting_reasons=("ErrImagePull",)), "restart"),
    "an init container backing off": Case(pod(waiting_reasons=("PodInitializing", "ImagePullBackOff")), "restart"),
    "owned by a StatefulSet": Case(pod(owner=PodOwner("apps/v1", "StatefulSet", "db", "u")), "restart"),
    "owned by a DaemonSet": Case(pod(owner=PodOwner("apps/v1", "DaemonSet", "agent", "u")), "restart"),
    "owned by a Job": Case(pod(owner=PodOwner("batch/v1", "Job", "migrate", "u")), "restart"),
    "waiting for another reason": Case(pod(waiting_reasons=("ContainerCreating",)), "ignore"),
    "crash looping": Case(pod(waiting_reasons=("CrashLoopBackOff",)), "ignore"),
    "not waiting at all": Case(pod(waiting_reasons=()), "ignore"),
    "already has the secret": Case(pod(image_pull_secrets=("other", PULL)), "ignore"),
    "its ServiceAccount does not list the secret yet": Case(pod(service_account="builder"), "ignore"),
    "its ServiceAccount does not exist": Case(pod(service_account="gone"), "ignore"),
    "being deleted": Case(pod(deleting=True), "ignore"),
    "deleted by us before (cache lag)": Case(pod(), "ignore", deleted_uids=frozenset({"uid-pod"})),
    "a bare Pod": Case(pod(owner=None), "report: NoController"),
    "owned by something that is not a known controller": Case(
        pod(owner=PodOwner("example.com/v1", "Sandbox", "s", "u")), "report: NoController"
    ),
    "list copied from the ServiceAccount before it had the secret": Case(
        pod(image_pull_secrets=("other",)), "restart"
    ),
    "list set by the template: the new Pod would lack the secret too": Case(
        pod(image_pull_secrets=("team-own",)), "report: TemplateSetsPullSecrets"
    ),
    "same list as before, but its owner was restarted already: the template sets it": Case(
        pod(image_pull_secrets=("other",)), "report: TemplateSetsPullSecrets",
        restarted_owner_uids=frozenset({"uid-rs"}),
    ),
    "an empty list after an earlier restart of the owner: a sibling admitted before": Case(
        pod(), "restart", restarted_owner_uids=frozenset({"uid-rs"})
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_condition(case: Case) -> None:
    plan = plan_stuck_pods([case.pod], PULL, ACCOUNTS, case.deleted_uids, case.restarted_owner_uids)

    if case.verdict == "restart":
        assert plan.restart == (case.pod,) and plan.report == ()
    elif case.verdict == "ignore":
        assert plan.restart == () and plan.report == ()
    else:
        assert plan.restart == ()
        assert [(stuck.pod, f"report: {stuck.reason}") for stuck in plan.report] == [(case.pod, case.verdict)]


def test_results_are_sorted_by_name_and_siblings_restart_together() -> None:
    pods = [pod(name=name, uid=f"uid-{name}") for name in ("web-c", "web-a", "web-b")]
    bare = [pod(name=name, uid=f"uid-{name}", owner=None) for name in ("z", "y")]

    plan = plan_stuck_pods(pods + bare, PULL, ACCOUNTS)

    assert [p.name for p in plan.restart] == ["web-a", "web-b", "web-c"]
    assert [s.pod.key for s in plan.report] == ["team-a/y", "team-a/z"]


def test_nothing_to_do_without_pods() -> None:
    plan = plan_stuck_pods([], PULL, ACCOUNTS)
    assert plan.restart == () and plan.report == ()


def test_problems_tell_what_to_do_for_each_kind_of_stuck_pod() -> None:
    restartable, bare = pod(name="web"), pod(name="bare", uid="u2", owner=None)
    templated = pod(name="tpl", uid="u3", image_pull_secrets=("team-own",))

    problems = stuck_pod_problems(plan_stuck_pods([restartable, bare, templated], PULL, ACCOUNTS), PULL)

    assert problems[restartable].endswith("delete it, or set spec.restartStuckPods")
    assert "no controller to recreate it" in problems[bare]
    assert "template sets imagePullSecrets" in problems[templated]


def test_pod_facts_from_an_api_object() -> None:
    obj = {
        "metadata": {
            "namespace": "team-a", "name": "web-1", "uid": "u1", "resourceVersion": "7",
            "ownerReferences": [
                {"apiVersion": "example.com/v1", "kind": "Tracker", "name": "t", "uid": "ut"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "ur", "controller": True},
            ],
        },
        "spec": {"imagePullSecrets": [{"name": "other"}]},
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull", "message": "x"}}}],
            "containerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}, {"state": {"running": {}}}],
        },
    }  # fmt: skip

    facts = pod_facts(obj)

    assert facts.owner == PodOwner("apps/v1", "ReplicaSet", "web", "ur")  # the controller, not any owner
    assert facts.service_account == "default"  # what admission fills in when none is named
    assert facts.image_pull_secrets == ("other",)
    assert facts.waiting_reasons == ("ErrImagePull", "PodInitializing")
    assert not facts.deleting
    assert pod_facts({**obj, "metadata": {**obj["metadata"], "ownerReferences": []}}).owner is None
