"""The project's exceptions, one tree.

    RegcredError
    ├── InvalidSpecError          the RegistryCredential's spec fails validation
    ├── SourceError               a source Secret cannot be used (has a status ``reason``)
    │   ├── SourceNotAllowedError     outside the allowed source namespaces
    │   ├── SourceMissingError        no such Secret
    │   ├── SourceKeyMissingError     the Secret lacks the key
    │   ├── SourceWrongTypeError      not a kubernetes.io/dockerconfigjson Secret
    │   ├── SourceInvalidConfigError  .dockerconfigjson is not a docker config
    │   ├── SourceNotTextError        a username or password is not UTF-8 text
    │   └── SourceEmptyPasswordError  the password is empty
    └── KubeError                 the API server refused or failed (translated at the I/O boundary)
        ├── NotFoundError
        ├── ConflictError         a resourceVersion precondition failed, or the object exists
        ├── ForbiddenError        RBAC said no
        ├── GoneError             a watch's resourceVersion expired (410)
        ├── UnavailableError      the API server could not be reached or answered 5xx/429
        └── NotLeaderError        a write was not sent: the leader Lease is not confirmed

Messages never carry secret material: they name objects and keys, never values.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "InvalidSpecError",
    "KubeError",
    "NotFoundError",
    "NotLeaderError",
    "RegcredError",
    "SourceEmptyPasswordError",
    "SourceError",
    "SourceInvalidConfigError",
    "SourceKeyMissingError",
    "SourceMissingError",
    "SourceNotAllowedError",
    "SourceNotTextError",
    "SourceWrongTypeError",
    "UnavailableError",
]


class RegcredError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidSpecError(RegcredError):
    """The spec does not validate; the message names the fields."""

    reason = "InvalidSpec"


class SourceError(RegcredError):
    """A source Secret cannot be used; ``reason`` is the status condition reason."""

    reason = "SourceInvalid"


class SourceNotAllowedError(SourceError):
    reason = "SourceNamespaceNotAllowed"


class SourceMissingError(SourceError):
    reason = "SourceSecretNotFound"


class SourceKeyMissingError(SourceError):
    reason = "SourceKeyNotFound"


class SourceWrongTypeError(SourceError):
    reason = "SourceWrongType"


class SourceInvalidConfigError(SourceError):
    reason = "SourceInvalidDockerConfig"


class SourceNotTextError(SourceError):
    reason = "SourceValueNotText"


class SourceEmptyPasswordError(SourceError):
    reason = "SourceEmptyPassword"


class KubeError(RegcredError):
    """The API server refused or failed a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(KubeError):
    pass


class ConflictError(KubeError):
    pass


class ForbiddenError(KubeError):
    pass


class GoneError(KubeError):
    pass


class UnavailableError(KubeError):
    pass


class NotLeaderError(KubeError):
    """A write was refused before it was sent: this replica has not confirmed the leader
    Lease within the renew deadline, so another replica may be leading. Retried like an
    outage: the Lease is confirmed again, or this replica stops."""
