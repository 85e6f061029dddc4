"""SIGKILL the operator anywhere in a fan-out, a rotation, a rename or a cleanup; restart; check.

Each trial changes what every namespace must hold (a new password, or a new
secretName), kills the operator at a random moment of the resulting fan-out (and,
in some trials, once more while it starts up again), restarts it and waits for the
end state: every target namespace holds exactly the right replica and one entry
on its ServiceAccount, hand-made entries are kept, and no Secret the operator does
not own changed by a single byte or resourceVersion. The last trial deletes the
credential and kills the operator in the middle of its cleanup.

Sizes come from the environment; `make test` runs a short version, `make soak`
the long one:

    REGCRED_SOAK_TRIALS      trials (default 3)
    REGCRED_SOAK_NAMESPACES  target namespaces (default 60)
    REGCRED_SOAK_SEED        the random seed (default: drawn, and printed)
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from harness import (
    OperatorProcess,
    assert_foreign_secrets_untouched,
    env_int,
    foreign_secrets,
    managed_replicas,
    pull_secret_entries,
    recorded_entries,
    replica_config,
    service_accounts_in,
)
from kubernetes import client

from e2e.conftest import poll
from e2e.objects import SERVER, tenant_spec

pytestmark = pytest.mark.soak

TRIALS = env_int("REGCRED_SOAK_TRIALS", 3)
NAMESPACES = env_int("REGCRED_SOAK_NAMESPACES", 60)
CONVERGE_TIMEOUT = 180.0
# Objects a person made, which the operator must leave exactly as they are.
HAND_MADE_ENTRY = "hand-made-pull"
BYSTANDER_ACCOUNT = "builder"
APP_SECRET = "app-config"


@dataclass
class Tenant:
    """The namespaces of the trial and what people put there by hand."""

    namespaces: list[str]
    # These hold a foreign Secret named `conflict_name`: the operator may not serve them under it.
    conflicted: set[str]
    conflict_name: str
    with_hand_made_entry: set[str]

    def served(self, secret_name: str) -> set[str]:
        return set(self.namespaces) - (self.conflicted if secret_name == self.conflict_name else set())


@dataclass
class Wanted:
    """What every served namespace must hold after a trial."""

    secret_name: str
    password: str


def make_tenant(cluster, make_namespace, tenant: str, count: int, first_secret_name: str) -> Tenant:
    namespaces = [make_namespace("crash", labels={"tenant": tenant}) for _ in range(count)]
    poll(
        lambda: len([sa for sa in service_accounts_in(cluster, set(namespaces)) if sa.metadata.name == "default"])
        == count,
        timeout=120, what="every namespace's default ServiceAccount",
    )  # fmt: skip
    conflicted = set(namespaces[:2])
    for namespace in conflicted:
        cluster.core.create_namespaced_secret(
            namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name=first_secret_name), string_data={"mine": "yes"}),
        )
    with_hand_made = set(namespaces[::7])
    for namespace in with_hand_made:
        cluster.core.patch_namespaced_service_account(
            "default", namespace, {"imagePullSecrets": [{"name": HAND_MADE_ENTRY}]}
        )
    for namespace in namespaces[::10]:
        cluster.core.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=APP_SECRET), string_data={"k": "v"})
        )
        cluster.core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=BYSTANDER_ACCOUNT))
        )
    return Tenant(namespaces, conflicted, first_secret_name, with_hand_made)


def end_state_problems(cluster, credential: str, tenant: Tenant, wanted: Wanted | None) -> list[str]:
    """Every way the cluster differs from the wanted end state (None: the credential is gone)."""
    problems = []
    replicas = managed_replicas(cluster, credential)
    served = tenant.served(wanted.secret_name) if wanted else set()
    expected_replicas = {(ns, wanted.secret_name) for ns in served} if wanted else set()
    for key in sorted(set(replicas) - expected_replicas):
        problems.append(f"unexpected replica {key}")
    for key in sorted(expected_replicas - set(replicas)):
        problems.append(f"missing replica {key}")
    for key in sorted(expected_replicas & set(replicas)):
        entry = replica_config(replicas[key])["auths"].get(SERVER, {})
        if entry.get("password") != wanted.password:
            problems.append(f"replica {key} holds an old password")
    for account in service_accounts_in(cluster, set(tenant.namespaces)):
        where = f"{account.metadata.namespace}/{account.metadata.name}"
        entries = pull_secret_entries(account)
        if len(entries) != len(set(entries)):
            problems.append(f"{where}: duplicate imagePullSecrets entries {entries}")
        hand_made = [HAND_MADE_ENTRY] if (
            account.metadata.name == "default" and account.metadata.namespace in tenant.with_hand_made_entry
        ) else []  # fmt: skip
        serve = account.metadata.name == "default" and account.metadata.namespace in served
        expected = hand_made + ([wanted.secret_name] if wanted and serve else [])
        if entries != expected:
            problems.append(f"{where}: imagePullSecrets {entries}, expected {expected}")
        record = recorded_entries(account)
        expected_record = f"{wanted.secret_name}={credential}" if wanted and serve else None
        if record != expected_record:
            problems.append(f"{where}: recorded entries {record!r}, expected {expected_record!r}")
    return problems


def wait_converged(cluster, credential: str, tenant: Tenant, wanted: Wanted | None, context: str) -> float:
    """Wait for the end state; return how long it took."""
    started = time.monotonic()
    problems: list[str] = []
    while time.monotonic() - started < CONVERGE_TIMEOUT:
        problems = end_state_problems(cluster, credential, tenant, wanted)
        if not problems:
            return time.monotonic() - started
        time.sleep(0.5)
    pytest.fail(f"{context}: no convergence in {CONVERGE_TIMEOUT}s; {len(problems)} problems: {problems[:10]}")


def replicas_in_wanted_state(cluster, credential: str, tenant: Tenant, wanted: Wanted | None) -> int:
    """How far the operator got: served namespaces already holding the wanted replica
    (or, with the credential deleted, namespaces whose replica is gone)."""
    replicas = managed_replicas(cluster, credential)
    if wanted is None:
        return len(tenant.namespaces) - len(replicas)
    return sum(
        1
        for namespace in tenant.served(wanted.secret_name)
        if (secret := replicas.get((namespace, wanted.secret_name))) is not None
        and replica_config(secret)["auths"].get(SERVER, {}).get("password") == wanted.password
    )


def crash_and_restart(
    operator: OperatorProcess, rng: random.Random, progress: Callable[[], int], total: int
) -> str:
    """SIGKILL once a random share of the work is done; sometimes again during start-up.

    Returns what happened, with how far the operator had got when it died.
    """
    target = rng.randrange(total)
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while progress() < target and time.monotonic() < deadline:
        time.sleep(0.01)
    operator.kill()
    report = f"SIGKILL at {progress()}/{total} (aimed at {target})"
    if rng.random() < 0.5:
        startup_delay = rng.uniform(0, 1.5)
        operator.start(wait=False)
        time.sleep(startup_delay)
        operator.kill()
        report += f", again {startup_delay:.2f}s into the restart"
    operator.start()
    return report


def test_sigkill_anywhere_converges_without_touching_foreign_objects(
    cluster, make_namespace, credentials, sources, operator_process
):
    seed = env_int("REGCRED_SOAK_SEED", random.randrange(2**32))
    rng = random.Random(seed)
    print(f"crash trials: seed={seed} trials={TRIALS} namespaces={NAMESPACES}")
    tenant_label = uuid.uuid4().hex[:8]
    wanted = Wanted(secret_name=f"pull-{tenant_label}-0", password=f"pw-{uuid.uuid4().hex}")
    tenant = make_tenant(cluster, make_namespace, tenant_label, NAMESPACES, wanted.secret_name)
    source = sources.create({"password": wanted.password})
    operator_process.start()

    before = foreign_secrets(cluster)
    name = credentials.create(tenant_spec(tenant_label, source, secretName=wanted.secret_name))
    took = wait_converged(cluster, name, tenant, wanted, "first fan-out")
    assert_foreign_secrets_untouched(before, foreign_secrets(cluster))
    print(f"first fan-out, undisturbed: converged in {took:.1f}s")

    for trial in range(TRIALS):
        context = f"trial {trial} (seed {seed})"
        if rng.random() < 0.5:
            change = "rotate"
            wanted.password = f"pw-{uuid.uuid4().hex}"
            sources.replace_data(source, {"password": wanted.password})
        else:
            change = "rename"
            wanted.secret_name = f"pull-{tenant_label}-{trial + 1}"
            credentials.patch_spec(name, {"secretName": wanted.secret_name})
        before = foreign_secrets(cluster)
        crash = crash_and_restart(
            operator_process, rng,
            lambda: replicas_in_wanted_state(cluster, name, tenant, wanted),
            len(tenant.served(wanted.secret_name)),
        )  # fmt: skip
        took = wait_converged(cluster, name, tenant, wanted, context)
        assert_foreign_secrets_untouched(before, foreign_secrets(cluster))
        print(f"{context}: {change}, {crash}; converged {took:.1f}s after the restart")

    before = foreign_secrets(cluster)
    credentials.delete(name, wait=False)
    crash = crash_and_restart(
        operator_process, rng,
        lambda: replicas_in_wanted_state(cluster, name, tenant, None), len(tenant.namespaces),
    )  # fmt: skip
    poll(lambda: not credentials.exists(name), timeout=CONVERGE_TIMEOUT, what="the credential to go")
    problems = end_state_problems(cluster, name, tenant, None)
    assert not problems, f"cleanup (seed {seed}) left: {problems[:10]}"
    assert_foreign_secrets_untouched(before, foreign_secrets(cluster))
    print(f"cleanup: {crash}; nothing left behind")
