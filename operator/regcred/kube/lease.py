"""Leader election with a coordination.k8s.io/v1 Lease (the client-go leaderelection contract).

A candidate takes the Lease when it is free or when its holder has not renewed
it for `lease_duration` as measured on the candidate's own clock (so clock skew
between nodes does not matter), renews it every `retry_period`, and gives up
leadership when it cannot renew within `renew_deadline`. Every write carries the
resourceVersion it read, so two candidates can never both win.

Fencing: `confirmed()` is the write gate. It is open only while the last successful
renewal *started* less than `renew_deadline` ago on this process's clock, and every
request is bounded by `request_timeout` (below `lease_duration - renew_deadline`). A
write sent through the open gate is therefore done or abandoned before a standby,
which waits a whole `lease_duration` after it saw that renewal, can take over.

Failing loudly: a campaign that raises anything (not only a `KubeError`, which counts
as a failed renewal) ends at once, and a leader stops leading with it, gate closed and
`on_stopped_leading` called. `alive()` then says False, for the owner to exit on.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from regcred.errors import ConflictError, KubeError, NotFoundError
from regcred.kube.client import JsonObject, KubeClient, object_path

__all__ = ["LeaderElector", "LeaseTiming"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTiming:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @property
    def request_timeout(self) -> float:
        """The bound on every API request of a candidate: a write let through just before
        the renew deadline must end before the Lease can expire; the rest is margin for
        the candidates' clocks running at slightly different rates."""
        return (self.lease_duration - self.renew_deadline) * 0.8


def _micro_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for a Lease in a thread; calls back when leadership starts and when it is lost."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        timing: LeaseTiming = LeaseTiming(),
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._clock = clock
        self._path = object_path("coordination.k8s.io/v1", "leases", namespace, name)
        self._collection = object_path("coordination.k8s.io/v1", "leases", namespace)
        self.name = name
        self.identity = identity
        self.timing = timing
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._stop = threading.Event()
        self.leading = threading.Event()
        # What we last saw of someone else's lease, and when (monotonic) we saw it change.
        self._observed: tuple[str | None, str | None] = (None, None)
        self._observed_at = 0.0
        # When (on our clock) the last successful acquire-or-renew round started.
        self._confirmed_at = 0.0
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        """Whether the campaign still runs: False once stopped, lost or failed."""
        return self._thread.is_alive()

    def confirmed(self) -> bool:
        """The write gate: leading, with the Lease confirmed within the renew deadline.

        Cheap (no API call): it reads what the campaign thread last recorded.
        """
        return self.leading.is_set() and self._clock() - self._confirmed_at < self.timing.renew_deadline

    def stop(self, release: bool = True) -> None:
        """Stop campaigning and writing; a leader releases the Lease so a standby takes over at once."""
        self._stop.set()
        self._thread.join(timeout=self.timing.retry_period * 3)
        if release and self.leading.is_set():
            self._release()
        self.leading.clear()

    # -- one attempt -------------------------------------------------------------------
    def _spec(self, acquire_time: str, transitions: int) -> dict[str, object]:
        now = _micro_time(datetime.datetime.now(datetime.UTC))
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
            "acquireTime": acquire_time or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One round: True when we hold the Lease afterwards."""
        try:
            lease = self._client.request("GET", self._path)
        except NotFoundError:
            return self._create()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if holder == self.identity:
            return self._write(lease, self._spec(spec.get("acquireTime", ""), spec.get("leaseTransitions", 0)))
        observed = (holder, spec.get("renewTime"))
        if observed != self._observed:
            self._observed, self._observed_at = observed, self._clock()
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
        if holder and self._clock() - self._observed_at < duration:
            return False  # held and renewed recently enough
        return self._write(lease, self._spec("", int(spec.get("leaseTransitions") or 0) + 1))

    def _create(self) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": self._spec("", 0),
        }
        try:
            self._client.request("POST", self._collection, body=body)
            return True
        except ConflictError:
            return False  # another candidate created it first

    def _write(self, lease: JsonObject, spec: dict[str, object]) -> bool:
        body = {**lease, "spec": spec}
        try:
            self._client.request("PUT", self._path, body=body)  # carries the resourceVersion read
            return True
        except ConflictError:
            return False

    def _release(self) -> None:
        try:
            lease = self._client.request("GET", self._path)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
                self._client.request("PUT", self._path, body={**lease, "spec": spec})
        except KubeError as error:
            log.warning("could not release the leader Lease: %s", error)

    # -- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._campaign()
        except BaseException:
            # Whatever broke (a bug, an answer that is not a Lease), this process no longer
            # knows whether it holds the Lease: it stops leading now, not a deadline later.
            log.exception("leader election failed; leadership of the Lease %s ends", self.name)
            self._step_down()

    def _campaign(self) -> None:
        while not self._stop.is_set():
            # The Lease is confirmed as of the round's start: the write may have landed
            # (and the standby's count begun) any time after it.
            started = self._clock()
            try:
                held = self.try_acquire_or_renew()
            except KubeError as error:
                log.warning("leader election: %s", error)
                held = False
            if held:
                self._confirmed_at = started
                if not self.leading.is_set():
                    log.info("became leader (Lease %s, identity %s)", self.name, self.identity)
                    self.leading.set()
                    if self._on_started:
                        self._on_started()
            elif self.leading.is_set() and self._clock() - self._confirmed_at > self.timing.renew_deadline:
                log.error("lost the leader Lease %s: could not renew for %.0fs", self.name, self.timing.renew_deadline)
                self._step_down()
                return
            self._stop.wait(self.timing.retry_period)

    def _step_down(self) -> None:
        """Close the write gate, then tell the owner (a leader only): it must stop acting."""
        was_leading = self.leading.is_set()
        self.leading.clear()
        if was_leading and self._on_stopped:
            try:
                self._on_stopped()
            except Exception:
                log.exception("the lost-leadership callback failed")
