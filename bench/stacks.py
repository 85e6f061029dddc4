"""Sort py-spy's raw stacks of the operator (`bench.account`) into where the CPU went.

    python -m bench.stacks profile-1000.txt

py-spy without `--gil` and without `--idle` still counts a thread blocked in a socket
read or a lock as active (its OS state says so at the instant), so samples whose
innermost frame waits are set apart first; what is left is work. Each working sample
is then given the first category whose test matches, most specific first: logging,
JSON (with where it was called from), then the watch path, the request path, status,
planning, the work queue, kopf, and the rest.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# Innermost frames that wait: on the socket, a lock or a queue, or the event loop's poll.
WAITING = (
    "SSLSocket.read ",
    "SSLSocket.recv_into",
    "socket.recv",
    "select (selectors.py",
    "Condition.wait ",
    "Event.wait ",
    "lock.acquire",
    "SimpleQueue.get",
    "_worker (concurrent/futures/thread.py",
    "time.sleep",
    "sleep (",
    "poll (",
    "wait (threading.py",
    "do_poll (urllib3/util/wait.py",
)

CATEGORIES = (
    ("logging", ("logging/",)),
    ("JSON, watch events", ("json/",), ("KubeClient.watch", "informer")),
    ("JSON, requests", ("json/",), ("KubeClient.request",)),
    ("JSON, other", ("json/",)),
    ("watch events (read, decode, cache update)", ("KubeClient.watch", "regcred/kube/informer")),
    ("requests (urllib3, http.client, ssl, socket)", ("KubeClient.request", "urllib3/", "http/client")),
    ("status", ("regcred/controller/status",)),
    ("planning", ("regcred/planning",)),
    ("metrics", ("prometheus_client/",)),
    ("work queue and locks", ("regcred/workqueue", "threading.py", "queue.py")),
    ("kopf and asyncio", ("kopf/", "asyncio/")),
    ("controller: gather, apply, bookkeeping", ("regcred/controller", "regcred/kube")),
)


def classify(frames: list[str]) -> str:
    # A worker's frames below its loop: the loop itself is every worker sample's root.
    roots = [i for i, frame in enumerate(frames) if "regcred/controller/worker" in frame]
    stack = ";".join(frames[roots[-1] + 1 :] if roots else frames)
    for name, needles, *within in CATEGORIES:
        if any(needle in stack for needle in needles) and (
            not within or any(context in stack for context in within[0])
        ):
            return name
    return "other"


def account(path: Path) -> tuple[Counter[str], int]:
    """Working samples by category, and the waiting samples set apart."""
    work: Counter[str] = Counter()
    waiting = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(frames[-1].startswith(marker) or marker in frames[-1] for marker in WAITING):
            waiting += int(count)
            continue
        work[classify(frames)] += int(count)
    return work, waiting


def main() -> int:
    for name in sys.argv[1:]:
        work, waiting = account(Path(name))
        total = sum(work.values())
        print(f"{name}: {total} working samples ({waiting} waiting, set apart)")
        for category, samples in work.most_common():
            print(f"  {samples / total:6.1%}  {category}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
