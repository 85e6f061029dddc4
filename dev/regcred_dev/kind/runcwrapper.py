"""A runc wrapper that drops the capabilities the host cannot grant, then runs runc.

On some VMs a capability (often CAP_SYS_RESOURCE) is missing from every process's
bounding set. Docker asks for all capabilities the kernel knows for ``--privileged``
containers and runc then fails with "unable to apply caps: operation not permitted".
This wrapper edits the OCI spec (``config.json`` of the bundle on ``create``/``run``,
the ``--process`` file on ``exec``) so that it asks only for capabilities in the
bounding set, and then execs the real runc with unchanged arguments.

This file is copied, as it is, into the regcred cache and registered with dockerd as a
runtime; it must use nothing but the standard library. Its pure functions are unit
tested from the package.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# Filled in when the wrapper is installed: the runc this wrapper stands in front of.
REAL_RUNC = "runc"

# Linux capability numbers (include/uapi/linux/capability.h), index = bit.
CAPABILITY_NAMES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
# runc's global options that take a value as the next argument.
_GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--root", "--log", "--log-format", "--criu"})


def capabilities_in_mask(mask: int) -> frozenset[str]:
    """Names of the capabilities whose bits are set in `mask` (unknown bits ignored)."""
    return frozenset(name for bit, name in enumerate(CAPABILITY_NAMES) if mask >> bit & 1)


def bounding_set(status_text: str) -> frozenset[str]:
    """The bounding set named by the ``CapBnd:`` line of a /proc/PID/status text."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            return capabilities_in_mask(int(line.split(":", 1)[1].strip(), 16))
    raise ValueError("no CapBnd line in the status text")


def missing_capabilities(status_text: str) -> frozenset[str]:
    """Known capabilities absent from the bounding set: the ones runc cannot apply."""
    return frozenset(CAPABILITY_NAMES) - bounding_set(status_text)


def strip_capabilities(capabilities: dict[str, Any], allowed: frozenset[str]) -> bool:
    """Remove from each capability list the names not in `allowed`; return if any went."""
    changed = False
    for set_name in CAPABILITY_SETS:
        names = capabilities.get(set_name)
        if isinstance(names, list):
            kept = [name for name in names if name in allowed]
            if len(kept) != len(names):
                capabilities[set_name] = kept
                changed = True
    return changed


def spec_file_to_edit(args: Sequence[str]) -> tuple[Path, str] | None:
    """Which JSON file of this runc call holds capabilities, and where in it.

    Returns ``(path, "process.capabilities")`` for ``create``/``run`` (the bundle's
    config.json), ``(path, "capabilities")`` for ``exec --process FILE``, else None.
    """
    position = 0
    while position < len(args):
        arg = args[position]
        if arg in _GLOBAL_OPTIONS_WITH_VALUE:
            position += 2
            continue
        if arg.startswith("-"):
            position += 1
            continue
        break
    else:
        return None
    command, rest = args[position], list(args[position + 1 :])
    if command in ("create", "run"):
        bundle = _option_value(rest, ("--bundle", "-b")) or "."
        return Path(bundle) / "config.json", "process.capabilities"
    if command == "exec":
        process = _option_value(rest, ("--process", "-p"))
        return (Path(process), "capabilities") if process else None
    return None


def edit_spec(document: dict[str, Any], where: str, allowed: frozenset[str]) -> bool:
    """Strip capabilities at dotted path `where` of an OCI JSON document."""
    node: Any = document
    for key in where.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return isinstance(node, dict) and strip_capabilities(node, allowed)


def _option_value(args: Iterable[str], names: tuple[str, ...]) -> str | None:
    arguments = list(args)
    for index, arg in enumerate(arguments):
        for name in names:
            if arg == name and index + 1 < len(arguments):
                return arguments[index + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str]) -> None:
    """Edit the spec this call uses, if any, then become the real runc."""
    target = spec_file_to_edit(argv)
    if target is not None and target[0].is_file():
        path, where = target
        allowed = bounding_set(Path("/proc/self/status").read_text())
        document = json.loads(path.read_text())
        if edit_spec(document, where, allowed):
            path.write_text(json.dumps(document))
    os.execv(REAL_RUNC, [REAL_RUNC, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
