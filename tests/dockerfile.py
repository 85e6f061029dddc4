"""The project's Dockerfile read as instructions, for the tests that check what it builds and runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "DOCKERFILE",
    "Instruction",
    "global_args",
    "instructions",
    "parse_dockerfile",
    "runtime_command",
]

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    flags: tuple[str, ...]
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form RUN/CMD/ENTRYPOINT; fails the test if shell form."""
        try:
            command = json.loads(self.arguments)
        except json.JSONDecodeError:
            pytest.fail(f"{self.keyword} {self.arguments!r} is in shell form")
        assert isinstance(command, list) and all(isinstance(word, str) for word in command)
        return command


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage, comments dropped.

    Each stage starts at FROM; the first group holds what comes before the first FROM
    (the global ARGs), and is empty when nothing does.
    """
    logical_lines: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical_lines.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = [[]]
    for line in logical_lines:
        keyword, _, rest = line.strip().partition(" ")
        flags: list[str] = []
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.lstrip()
        instruction = Instruction(keyword.upper(), tuple(flags), rest.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def instructions(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [instruction for instruction in stage if instruction.keyword == keyword]


def global_args(preamble: list[Instruction]) -> dict[str, str]:
    """The default of each ARG declared before the first FROM."""
    names_and_defaults = (instruction.arguments.partition("=") for instruction in preamble)
    return {name: default for name, _, default in names_and_defaults}


def runtime_command(container_args: list[str] | None) -> list[str]:
    """The argv the image runs for a container with these `args` (None: no args given).

    Kubernetes' rule: `args` replaces the image's CMD and is appended to its ENTRYPOINT.
    """
    runtime = parse_dockerfile(DOCKERFILE.read_text())[-1]
    (entrypoint,) = instructions(runtime, "ENTRYPOINT")
    if container_args is None:
        (default_args,) = instructions(runtime, "CMD")
        container_args = default_args.exec_form()
    return entrypoint.exec_form() + container_args
