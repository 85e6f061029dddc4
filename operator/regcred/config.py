"""Operator settings: where sources may live, what to skip, how hard to push the API server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from regcred.planning.selection import DEFAULT_ALWAYS_EXCLUDED

__all__ = ["DEFAULT_OPERATOR_NAMESPACE", "OperatorConfig"]

# Out of cluster there is no pod namespace to default to.
DEFAULT_OPERATOR_NAMESPACE = "regcred-system"


class OperatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    # Namespaces source Secrets may be read from; empty means the operator's own namespace.
    source_namespaces: frozenset[str] = frozenset()
    excluded_namespaces: frozenset[str] = DEFAULT_ALWAYS_EXCLUDED
    concurrency: int = Field(default=16, ge=1, le=256)
    resync_seconds: float = Field(default=300.0, gt=0)
    # How long a status flush waits for more namespace results before writing.
    status_debounce_seconds: float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _default_sources(self) -> OperatorConfig:
        if not self.source_namespaces:
            object.__setattr__(self, "source_namespaces", frozenset({self.operator_namespace}))
        return self
