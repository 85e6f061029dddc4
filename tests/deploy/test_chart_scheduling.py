"""The chart's scheduling values reach the operator's Pod template, and the defaults add
nothing (so the default rendering stays the kustomize base's, test_chart.py)."""

from __future__ import annotations


def pod_template(manifests: list[dict]) -> dict:
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    return deployment["spec"]["template"]


def test_the_defaults_set_no_scheduling_fields(helm_template):
    template = pod_template(helm_template())

    assert "annotations" not in template["metadata"]
    assert {"nodeSelector", "tolerations", "priorityClassName"}.isdisjoint(template["spec"])


def test_scheduling_values_reach_the_pod_template(helm_template):
    template = pod_template(
        helm_template(
            "--set",
            "podAnnotations.example\\.com/team=platform",
            "--set",
            "nodeSelector.kubernetes\\.io/os=linux",
            "--set",
            "tolerations[0].key=dedicated",
            "--set",
            "tolerations[0].operator=Exists",
            "--set",
            "tolerations[0].effect=NoSchedule",
            "--set",
            "priorityClassName=system-cluster-critical",
        )
    )

    assert template["metadata"]["annotations"] == {"example.com/team": "platform"}
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert template["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert template["spec"]["priorityClassName"] == "system-cluster-critical"
