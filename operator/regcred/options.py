"""Command-line options that `regcred` and `kubectl regcred` share, so previews see what the operator sees."""

from __future__ import annotations

import argparse
from typing import Any

from regcred.config import OperatorConfig, settings_from_env

__all__ = [
    "add_connection_arguments",
    "add_namespace_arguments",
    "add_operator_namespace_argument",
    "add_tenant_verify_arguments",
    "config_from_args",
]


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--kubeconfig and --context, as kubectl spells them."""
    parser.add_argument(
        "--kubeconfig", metavar="PATH", help="kubeconfig (default: the first file in $KUBECONFIG; else in-cluster config in a Pod, else ~/.kube/config)"
    )
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context")


def add_operator_namespace_argument(parser: argparse.ArgumentParser) -> None:
    """--operator-namespace, whose default (when None) `config_from_args` takes as the operator does."""
    parser.add_argument(
        "--operator-namespace", metavar="NS",
        help="the operator's namespace, default for source Secret references "
        "(default: $REGCRED_OPERATOR_NAMESPACE, $POD_NAMESPACE, the in-cluster namespace, else regcred-system)",
    )


def add_namespace_arguments(parser: argparse.ArgumentParser) -> None:
    """The operator's namespace settings, which previews must share with the operator."""
    add_operator_namespace_argument(parser)
    parser.add_argument(
        "--source-namespace", action="append", metavar="NS", dest="source_namespaces",
        help="a namespace source Secrets may be read from (repeat; default: the operator namespace)",
    )
    parser.add_argument(
        "--exclude-namespace", action="append", metavar="NS", dest="excluded_namespaces",
        help="a namespace never to replicate into, in addition to kube-system, kube-public and "
        "kube-node-lease, which are always skipped (repeat)",
    )
    parser.add_argument(
        "--tenant-label", metavar="KEY",
        help="the namespace label that names a namespace's tenant; a TenantRegistryCredential serves "
        "the namespaces with its own namespace's value (default: unset, its own namespace only)",
    )
    parser.add_argument(
        "--registry-ca-file", metavar="PATH",
        help="a CA bundle to trust, besides the system's, when checking registries (spec.verify)",
    )


def add_tenant_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """What a TenantRegistryCredential's spec.verify may reach: the operator's setting alone."""
    parser.add_argument(
        "--tenant-verify", action="store_true", default=None,
        help="let TenantRegistryCredentials' spec.verify check their registries, at public addresses "
        "and those of --tenant-verify-allow only (default: off, their checks are refused by policy)",
    )
    parser.add_argument(
        "--tenant-verify-allow", action="append", metavar="HOST|CIDR", dest="tenant_verify_allow",
        help="a host name or network a tenant's registry check may connect to besides public "
        "addresses (repeat; private, loopback and link-local addresses are refused unless listed)",
    )


def config_from_args(args: argparse.Namespace, **more: Any) -> OperatorConfig:
    """Settings from flags, then REGCRED_* variables, then defaults; raises pydantic's ValidationError."""
    overrides = {
        "operator_namespace": args.operator_namespace,
        "source_namespaces": frozenset(args.source_namespaces) if args.source_namespaces else None,
        "excluded_namespaces": frozenset(args.excluded_namespaces) if args.excluded_namespaces else None,
        "registry_ca_file": args.registry_ca_file,
        "tenant_label": args.tenant_label,
        "tenant_verify": getattr(args, "tenant_verify", None),
        "tenant_verify_allow": tuple(getattr(args, "tenant_verify_allow", None) or ()) or None,
        **more,
    }
    return OperatorConfig(**{**settings_from_env(), **{k: v for k, v in overrides.items() if v is not None}})
