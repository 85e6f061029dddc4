"""Turn a spec plus the source Secrets it references into the replica's content.

Every problem is collected (not just the first), so status can list them all;
messages name Secrets and keys, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from regcred.errors import (
    SourceEmptyPasswordError,
    SourceError,
    SourceKeyMissingError,
    SourceMissingError,
    SourceNotAllowedError,
    SourceNotTextError,
    SourceWrongTypeError,
)
from regcred.models import RegistryCredentialSpec, RegistryOverride
from regcred.planning.dockerconfig import (
    AuthSource,
    content_hash,
    kubectl_auth_entry,
    merge_auths,
    parse_docker_config,
    render_docker_config,
)

__all__ = ["DOCKER_CONFIG_TYPE", "ResolvedContent", "SourceSecret", "referenced_secrets", "resolve_content"]

DOCKER_CONFIG_TYPE = "kubernetes.io/dockerconfigjson"
DOCKER_CONFIG_KEY = ".dockerconfigjson"
USERNAME_KEY = "username"


@dataclass(frozen=True)
class SourceSecret:
    """A Secret in a source namespace, as read from the API (data decoded)."""

    namespace: str
    name: str
    type: str
    data: Mapping[str, bytes] = field(repr=False)


@dataclass(frozen=True)
class ResolvedContent:
    """The replica content, or the problems that prevent it."""

    docker_config: bytes | None = field(default=None, repr=False)
    content_hash: str | None = None
    overrides: tuple[RegistryOverride, ...] = ()
    problems: tuple[SourceError, ...] = ()

    @property
    def valid(self) -> bool:
        return self.docker_config is not None


def _fetch(
    namespace: str,
    name: str,
    secrets: Mapping[tuple[str, str], SourceSecret],
    allowed_namespaces: frozenset[str],
    field_path: str,
) -> SourceSecret:
    if namespace not in allowed_namespaces:
        allowed = ", ".join(sorted(allowed_namespaces))
        raise SourceNotAllowedError(
            f"{field_path}: namespace {namespace!r} is not an allowed source namespace ({allowed})"
        )
    secret = secrets.get((namespace, name))
    if secret is None:
        raise SourceMissingError(f"{field_path}: Secret {namespace}/{name} not found")
    return secret


def _decode_text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceNotTextError(f"{where} is not UTF-8 text") from None


def referenced_secrets(spec: RegistryCredentialSpec, default_namespace: str) -> frozenset[tuple[str, str]]:
    """The (namespace, name) of every source Secret the spec reads, allowed or not."""
    refs = [*spec.docker_config_secret_refs, *(registry.password_secret_ref for registry in spec.registries)]
    return frozenset((ref.namespace or default_namespace, ref.name) for ref in refs)


def resolve_content(
    spec: RegistryCredentialSpec,
    secrets: Mapping[tuple[str, str], SourceSecret],
    default_namespace: str,
    allowed_namespaces: frozenset[str],
) -> ResolvedContent:
    """Build the merged docker config, or report every source problem found."""
    problems: list[SourceError] = []
    config_sources: list[AuthSource] = []
    for index, ref in enumerate(spec.docker_config_secret_refs):
        field_path = f"dockerConfigSecretRefs[{index}]"
        try:
            namespace = ref.namespace or default_namespace
            secret = _fetch(namespace, ref.name, secrets, allowed_namespaces, field_path)
            where = f"{field_path} ({namespace}/{ref.name})"
            if secret.type != DOCKER_CONFIG_TYPE:
                raise SourceWrongTypeError(
                    f"{where}: Secret type is {secret.type!r}, expected {DOCKER_CONFIG_TYPE!r}"
                )
            if DOCKER_CONFIG_KEY not in secret.data:
                raise SourceKeyMissingError(f"{where}: key {DOCKER_CONFIG_KEY!r} not found")
            auths = parse_docker_config(secret.data[DOCKER_CONFIG_KEY], where)
            config_sources.append(AuthSource(label=where, auths=auths))
        except SourceError as problem:
            problems.append(problem)

    # Generated entries come after docker configs: later sources win the same server.
    for index, registry in enumerate(spec.registries):
        field_path = f"registries[{index}].passwordSecretRef"
        ref = registry.password_secret_ref
        try:
            namespace = ref.namespace or default_namespace
            secret = _fetch(namespace, ref.name, secrets, allowed_namespaces, field_path)
            where = f"{field_path} ({namespace}/{ref.name})"
            if ref.key not in secret.data:
                raise SourceKeyMissingError(f"{where}: key {ref.key!r} not found")
            password = _decode_text(secret.data[ref.key], f"{where}: key {ref.key!r}")
            if not password:
                raise SourceEmptyPasswordError(f"{where}: key {ref.key!r} is empty")
            username = registry.username
            if username is None:
                if USERNAME_KEY not in secret.data:
                    raise SourceKeyMissingError(
                        f"registries[{index}]: no username given and {where} has no "
                        f"{USERNAME_KEY!r} key"
                    )
                username = _decode_text(secret.data[USERNAME_KEY], f"{where}: key 'username'")
            entry = kubectl_auth_entry(username, password, registry.email)
            config_sources.append(
                AuthSource(label=f"registries[{index}]", auths={registry.server: entry})
            )
        except SourceError as problem:
            problems.append(problem)

    if problems:
        return ResolvedContent(problems=tuple(problems))
    merged = merge_auths(config_sources)
    docker_config = render_docker_config(merged.auths)
    overrides = tuple(
        RegistryOverride(server=server, used=used, ignored=list(ignored))
        for server, used, ignored in merged.overrides
    )
    return ResolvedContent(
        docker_config=docker_config, content_hash=content_hash(docker_config), overrides=overrides
    )
