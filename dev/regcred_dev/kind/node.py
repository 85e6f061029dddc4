"""Build the pinned kind binary and a kind node image without any container registry.

``kind build node-image`` fetches etcd, CoreDNS, pause, kindnetd and the storage
provisioner from registries, so this module does its steps itself:

- the node's base is a debootstrapped Debian bookworm (`regcred_dev.kind.debian`) with
  containerd, runc and the CNI plugins from Debian, plus kind's own files
  (``images/base/files`` of the pinned kind module);
- kubelet, kubeadm, kube-scheduler and kube-proxy come from the control plane's
  Kubernetes wrapper module; kube-apiserver, kube-controller-manager, kubectl and etcd
  are the control plane's own binaries (`regcred_dev.controlplane.build`);
- the images kubeadm asks for are made from those binaries with ``docker import``
  (CoreDNS from a wrapper main with only the plugins kubeadm's Corefile uses, pause
  compiled from Kubernetes' ``pause.c``) and preloaded into the node's containerd;
- pod networking is a static bridge CNI config, enough for one node.

The result is cached as a ``docker save`` tarball in ``cache_root()/kind/node-<hash>``
where the hash covers every pin and every generated file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from regcred_dev.controlplane.build import (
    ETCD_VERSION,
    KUBERNETES_VERSION,
    BuildError,
    build_kubernetes_commands,
    cache_root,
    ensure_binaries,
    go_build,
    go_environment,
    prepare_module,
)
from regcred_dev.kind.debian import DebianImageRecipe, ensure_debian_image, import_rootfs
from regcred_dev.kind.docker import (
    DockerError,
    ensure_cached_image,
    exclusive_lock,
    image_exists,
    progress,
    run_docker,
)
from regcred_dev.kind.quirks import (
    RUNTIME_NAME,
    HostQuirks,
    install_capability_runtime,
    oom_score_adj_lowerable,
    privileged_run_works,
)

__all__ = [
    "COREDNS_VERSION",
    "KIND_VERSION",
    "NODE_BASE_RECIPE",
    "NodeImage",
    "containerd_config",
    "detect_host_quirks",
    "ensure_kind",
    "ensure_node_image",
]

KIND_VERSION = "v0.33.0"
KIND_MODULE = "sigs.k8s.io/kind"
# kubeadm v1.37's CoreDNS tag; the build checks it against `kubeadm config images list`.
COREDNS_VERSION = "v1.14.6"
COREDNS_MODULE = "github.com/coredns/coredns"
# Bump when the node recipe changes in a way the hashed inputs do not show.
NODE_RECIPE_FORMAT = 1
NODE_REPOSITORY = "regcred-kind-node"
PAUSE_REPOSITORY = "regcred-kind-pause"
POD_SUBNET = "10.244.0.0/24"
STAMP_NAME = "build-complete.json"
NODE_BINARIES = ("kubelet", "kubeadm", "kube-scheduler", "kube-proxy")
CONTROL_PLANE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kubectl", "etcd")
# The plugins kubeadm's default Corefile names (`prometheus` lives in plugin/metrics).
COREDNS_PLUGINS = (
    "cache",
    "errors",
    "forward",
    "health",
    "kubernetes",
    "loadbalance",
    "loop",
    "metrics",
    "ready",
    "reload",
)

NODE_BASE_RECIPE = DebianImageRecipe(
    name="regcred-kind-base",
    # kind's base image packages, minus what only rootless or storage add-ons use (jq:
    # kind's mount-product-files hook runs it for every container); not trixie, whose
    # systemd refuses cgroup v1 hosts.
    packages=(
        "bash",
        "ca-certificates",
        "conntrack",
        "containerd",
        "containernetworking-plugins",
        "dbus",
        "ebtables",
        "ethtool",
        "iproute2",
        "iptables",
        "jq",
        "kmod",
        "mount",
        "nftables",
        "procps",
        "runc",
        "socat",
        "systemd",
        "util-linux",
    ),
)
KUBE_PROXY_BASE_RECIPE = DebianImageRecipe(
    name="regcred-kind-proxy-base", packages=("conntrack", "iptables", "kmod")
)

CNI_CONFIG = {
    "cniVersion": "1.0.0",
    "name": "kind",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": POD_SUBNET}]],
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
# kind applies /kind/manifests/default-cni.yaml; the network here is the static config
# above, so the manifest only records that (an empty one would fail `kubectl apply`).
DEFAULT_CNI_MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: regcred-kind-cni
  namespace: kube-system
data:
  note: "Pod network: static bridge CNI config in /etc/cni/net.d (one node, no kindnetd)."
"""


@dataclass(frozen=True)
class NodeImage:
    """A node image ready in the engine, and how it came about."""

    tag: str
    kind_binary: Path
    quirks: HostQuirks
    docker_shim_folder: Path | None  # put first on kind's PATH when not None
    cache_folder: Path


def kind_folder() -> Path:
    """``cache_root()/kind``: kind, the node's parts and images, runtimes, cluster files."""
    return cache_root() / "kind"


def ensure_kind() -> Path:
    """Return the pinned kind binary, building it through the Go module proxy once."""
    folder = kind_folder() / f"kind-{KIND_VERSION}"
    binary = folder / "kind"
    if (folder / STAMP_NAME).is_file() and os.access(binary, os.X_OK):
        return binary
    with exclusive_lock(folder / ".lock"):
        if (folder / STAMP_NAME).is_file() and os.access(binary, os.X_OK):
            return binary
        _require_go()
        started = time.monotonic()
        with (folder / "build.log").open("w") as log:
            module = prepare_module(
                folder, "kind", _wrapper_go_mod("kind", KIND_MODULE, KIND_VERSION), __package__
            )
            progress(f"building kind {KIND_VERSION} ...")
            go_build(module, str(binary), [KIND_MODULE], go_environment(), log)
        _write_stamp(folder, {"kind": KIND_VERSION, "buildSeconds": _since(started)})
    return binary


def kind_module_folder() -> Path:
    """The pinned kind module's source in the Go module cache (downloaded if needed)."""
    ensure_kind()
    return _module_dir(
        kind_folder() / f"kind-{KIND_VERSION}" / "modules" / "kind", f"{KIND_MODULE}@{KIND_VERSION}"
    )


def detect_host_quirks(pause_image: str, base_image: str) -> tuple[HostQuirks, Path | None]:
    """Try what kind does on this host; install the runtime fix only if it is needed.

    Returns the quirks and, when privileged runs need the wrapper runtime, the folder
    with the ``docker`` shim for kind's PATH.
    """
    caps_fail = not privileged_run_works(pause_image, ["/pause", "-v"])
    shim_folder = None
    if caps_fail:
        shim_folder = install_capability_runtime()
        if not privileged_run_works(pause_image, ["/pause", "-v"], runtime=RUNTIME_NAME):
            raise DockerError(
                "privileged containers fail even with the capability-filtering runtime"
            )
    # Probe the way kind will start the node: privileged, with the wrapper if needed.
    restricted = not oom_score_adj_lowerable(base_image, RUNTIME_NAME if caps_fail else None)
    quirks = HostQuirks(privileged_caps_fail=caps_fail, oom_score_adj_restricted=restricted)
    return quirks, shim_folder


def containerd_config(pause_image: str, restrict_oom_score_adj: bool) -> str:
    """The node's containerd config: kind's, with Debian's CNI plugins and certs.d."""
    return f"""\
# regcred: kind's containerd config (version 2), adapted to a node built from Debian.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  # the preloaded pause image; nothing is pulled
  sandbox_image = "{pause_image}"
  tolerate_missing_hugepages_controller = true
  # true where the node may not lower oom_score_adj (a host lacking CAP_SYS_RESOURCE);
  # pod sandboxes fail otherwise
  restrict_oom_score_adj = {"true" if restrict_oom_score_adj else "false"}

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".cni]
  # Debian's containernetworking-plugins
  bin_dir = "/usr/lib/cni"
  conf_dir = "/etc/cni/net.d"

[plugins."io.containerd.grpc.v1.cri".registry]
  # /etc/containerd/certs.d/HOST:PORT/ca.crt makes a registry's CA trusted
  config_path = "/etc/containerd/certs.d"
"""


def ensure_node_image() -> NodeImage:
    """Return the node image, in the engine: found, loaded from cache, or built.

    A cold build debootstraps two Debian images, compiles kubelet, kubeadm,
    kube-scheduler, kube-proxy and CoreDNS (minutes on 2 cores, faster with a warm Go
    cache) and saves the image; progress goes to stderr, details to build.log files.
    """
    kind_binary = ensure_kind()
    work = kind_folder() / f"parts-{KUBERNETES_VERSION}-{COREDNS_VERSION}"
    pause_image = _ensure_pause_image(work)
    base_image = ensure_debian_image(NODE_BASE_RECIPE)
    quirks, shim_folder = detect_host_quirks(pause_image, base_image)

    pause_tag = f"registry.k8s.io/pause:{_pause_version(work)}"
    files = _node_config_files(pause_tag, quirks.oom_score_adj_restricted)
    inputs = {
        "format": NODE_RECIPE_FORMAT,
        "kind": KIND_VERSION,
        "kubernetes": KUBERNETES_VERSION,
        "etcd": ETCD_VERSION,
        "coredns": COREDNS_VERSION,
        "base": NODE_BASE_RECIPE.fingerprint(),
        "proxyBase": KUBE_PROXY_BASE_RECIPE.fingerprint(),
        "files": {path: hashlib.sha256(text.encode()).hexdigest() for path, text in files.items()},
        "setup": hashlib.sha256(_NODE_SETUP_SCRIPT.encode()).hexdigest(),
        "corednsPlugins": list(COREDNS_PLUGINS),
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
    tag = f"{NODE_REPOSITORY}:{KUBERNETES_VERSION}-{digest}"
    folder = kind_folder() / f"node-{KUBERNETES_VERSION}-{digest}"

    def build(folder: Path, log: TextIO) -> None:
        _build_node_image(tag, base_image, files, work, log)

    ensure_cached_image(tag, folder, build, {k: v for k, v in inputs.items() if k != "files"})
    return NodeImage(tag, kind_binary, quirks, shim_folder, folder)


def _node_config_files(pause_tag: str, restrict_oom_score_adj: bool) -> dict[str, str]:
    """Files written into the node over kind's own, by path in the node."""
    return {
        "/etc/containerd/config.toml": containerd_config(pause_tag, restrict_oom_score_adj),
        "/etc/cni/net.d/10-kind-bridge.conflist": json.dumps(CNI_CONFIG, indent=2) + "\n",
        "/kind/manifests/default-cni.yaml": DEFAULT_CNI_MANIFEST,
        # one line without a newline, as `kind build node-image` writes it
        "/kind/version": KUBERNETES_VERSION,
    }


def _build_node_image(
    tag: str, base_image: str, files: dict[str, str], work: Path, log: TextIO
) -> None:
    binaries = _ensure_node_binaries(work)
    images_tarball = _ensure_preloaded_images(work, binaries, log)
    kind_files = kind_module_folder() / "images" / "base" / "files"
    container = f"regcred-kind-build-{tag.rsplit('-', 1)[-1]}"
    run_docker(["rm", "--force", container], log=log, check=False)
    progress(f"assembling node image {tag} ...")
    run_docker(
        [
            "run",
            "--detach",
            "--name",
            container,
            "--stop-signal",
            "SIGRTMIN+3",
            "--entrypoint",
            "sleep",
            base_image,
            "infinity",
        ],
        log=log,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="regcred-node-") as staging_name:
            staging = Path(staging_name) / "root"
            shutil.copytree(kind_files, staging, dirs_exist_ok=True)
            # The module cache is read-only; the node needs these writable and executable.
            subprocess.run(["chmod", "-R", "u+w,a+rX", str(staging)], check=True)
            for folder in (staging / "kind" / "bin", staging / "usr" / "local" / "bin"):
                for script in folder.iterdir():
                    script.chmod(0o755)
            (staging / "LICENSES" / "README.txt").unlink(missing_ok=True)
            usr_bin = staging / "usr" / "bin"
            usr_bin.mkdir(parents=True, exist_ok=True)
            for name, path in binaries.items():
                if name in (*NODE_BINARIES, "kubectl"):
                    shutil.copy2(path, usr_bin / name)
            for node_path, text in files.items():
                target = staging / node_path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            # docker cp of a folder's contents ("src/.") merges it into the node's /.
            run_docker(["cp", f"{staging}/.", f"{container}:/"], log=log)
        # Before containerd first starts: its CRI config names this file.
        spec = json.loads(run_docker(["exec", container, "ctr", "oci", "spec"], log=log))
        with tempfile.NamedTemporaryFile("w", suffix=".json") as cri_base:
            json.dump(cri_base_spec(spec), cri_base, indent=2)
            cri_base.flush()
            os.chmod(cri_base.name, 0o644)
            run_docker(["cp", cri_base.name, f"{container}:/etc/containerd/cri-base.json"], log=log)
        run_docker(["cp", str(images_tarball), f"{container}:/kind/images.tar"], log=log)
        run_docker(["exec", container, "/bin/bash", "-euc", _NODE_SETUP_SCRIPT], log=log)
        run_docker(
            [
                "commit",
                "--change",
                'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
                "--change",
                "CMD []",
                "--change",
                "ENV container=docker",
                container,
                tag,
            ],
            log=log,
        )
    finally:
        run_docker(["rm", "--force", container], log=log, check=False)
        # Inside the node image now; the next node build makes it afresh.
        images_tarball.unlink(missing_ok=True)


def cri_base_spec(default_spec: Mapping[str, Any]) -> dict[str, Any]:
    """kind's base runtime spec: containerd's default plus its product-files hook.

    kind's mount-product-files hook gives pods a stable product_uuid; rlimits are
    dropped so containers inherit the node's.
    """
    spec = dict(default_spec)
    hooks = dict(spec.get("hooks") or {})
    hooks["createContainer"] = [
        *hooks.get("createContainer", []),
        {"path": "/kind/bin/mount-product-files.sh"},
    ]
    spec["hooks"] = hooks
    process = dict(spec.get("process") or {})
    process.pop("rlimits", None)
    spec["process"] = process
    return spec


# Run inside the build container: kind's base Dockerfile steps, then the preload.
_NODE_SETUP_SCRIPT = r"""
chmod 755 /kind /kind/bin
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
# kind's containerd unit starts /usr/local/bin/containerd; Debian installs it in /usr/bin.
ln -sf /usr/bin/containerd /usr/local/bin/containerd
systemctl enable kubelet.service containerd.service undo-mount-hacks.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests /etc/containerd/certs.d
# Preload the images kubeadm wants into containerd's k8s.io namespace, as kind does.
containerd >/tmp/containerd.log 2>&1 &
for attempt in $(seq 1 60); do
  ctr version >/dev/null 2>&1 && break
  sleep 0.5
done
ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
  --all-platforms --no-unpack --digests /kind/images.tar
ctr --namespace=k8s.io images list -q
kill %1
wait %1 || true
rm -rf /kind/images.tar /tmp/containerd.log /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
"""


def _ensure_node_binaries(work: Path) -> dict[str, Path]:
    """kubelet, kubeadm, kube-scheduler, kube-proxy, CoreDNS and pause, plus the control plane's."""
    bin_folder = work / "bin"
    bin_folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(work / ".lock"):
        missing = [
            name for name in (*NODE_BINARIES, "coredns") if not (bin_folder / name).is_file()
        ]
        if missing:
            _require_go()
            env = go_environment()
            with (work / "go-build.log").open("a") as log:
                if any(name in NODE_BINARIES for name in missing):
                    build_kubernetes_commands(
                        NODE_BINARIES, work, bin_folder, env, log, __package__
                    )
                if "coredns" in missing:
                    _build_coredns(work, bin_folder / "coredns", env, log)
    found = {name: bin_folder / name for name in (*NODE_BINARIES, "coredns", "pause")}
    # Last: it waits while another process is building the control plane.
    control_plane = ensure_binaries()
    found.update({name: control_plane / name for name in CONTROL_PLANE_BINARIES})
    return found


def _build_coredns(work: Path, output: Path, env: dict[str, str], log: TextIO) -> None:
    go_mod = f"module regcred.dev/kind/coredns\n\ngo 1.26.0\n\nrequire {COREDNS_MODULE} {COREDNS_VERSION}\n"
    module = prepare_module(work, "coredns", go_mod, __package__)
    imports = "\n".join(f'\t_ "{COREDNS_MODULE}/plugin/{plugin}"' for plugin in COREDNS_PLUGINS)
    (module / "main.go").write_text(
        "// CoreDNS with only the plugins kubeadm's default Corefile uses.\n"
        f'package main\n\nimport (\n\t"{COREDNS_MODULE}/coremain"\n\n{imports}\n)\n\n'
        "func main() { coremain.Run() }\n"
    )
    progress(f"building CoreDNS {COREDNS_VERSION} (a few minutes when cold) ...")
    partial = output.with_name(output.name + ".partial")
    go_build(module, str(partial), ["."], env, log)
    partial.rename(output)


def _kubernetes_source(work: Path) -> Path:
    """k8s.io/kubernetes's source in the module cache (for pause.c), checked by go.sum."""
    go_mod = _wrapper_go_mod("kubernetes-source", "k8s.io/kubernetes", KUBERNETES_VERSION)
    module = prepare_module(work, "kubernetes", go_mod, __package__)
    return _module_dir(module, f"k8s.io/kubernetes@{KUBERNETES_VERSION}")


def _module_dir(module: Path, query: str) -> Path:
    """Download `query` inside wrapper `module` (so go.sum checks it); return its folder."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", query],
        cwd=module,
        env=go_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"could not download {query}: {result.stdout} {result.stderr}")
    return Path(json.loads(result.stdout)["Dir"])


def _pause_version(work: Path) -> str:
    """Kubernetes' pause version (``TAG ?=`` of build/pause/Makefile), remembered in `work`."""
    remembered = work / "pause-version"
    if remembered.is_file():
        return remembered.read_text().strip()
    makefile = (_kubernetes_source(work) / "build" / "pause" / "Makefile").read_text()
    for line in makefile.splitlines():
        if line.replace(" ", "").startswith("TAG?="):
            version = line.split("=", 1)[1].strip()
            work.mkdir(parents=True, exist_ok=True)
            remembered.write_text(version + "\n")
            return version
    raise BuildError("found no TAG in Kubernetes' build/pause/Makefile")


def _ensure_pause_image(work: Path) -> str:
    """A tiny image holding a static pause, built with gcc from Kubernetes' pause.c."""
    version = _pause_version(work)
    tag = f"{PAUSE_REPOSITORY}:{version}-{KUBERNETES_VERSION}"
    binary = work / "bin" / "pause"
    if not binary.is_file():
        gcc = shutil.which("gcc")
        if gcc is None:
            raise BuildError("building the pause image needs gcc (apt-get install gcc libc6-dev)")
        source = _kubernetes_source(work) / "build" / "pause" / "linux" / "pause.c"
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_name("pause.partial")
        # The flags of Kubernetes' build/pause/Makefile.
        subprocess.run(
            [
                gcc,
                "-Os",
                "-Wall",
                "-Werror",
                "-static",
                f"-DVERSION=v{version}-regcred",
                "-o",
                str(partial),
                str(source),
            ],
            check=True,
        )
        subprocess.run(["strip", str(partial)], check=False)
        partial.rename(binary)
    if not image_exists(tag):
        _import_static_binaries(tag, {"pause": binary}, ('ENTRYPOINT ["/pause"]',))
    return tag


def _import_static_binaries(tag: str, binaries: dict[str, Path], changes: tuple[str, ...]) -> None:
    """An image of static binaries: each at /NAME and /usr/local/bin/NAME, plus /tmp."""
    with tempfile.TemporaryDirectory(prefix="regcred-image-") as root_name:
        root = Path(root_name)
        (root / "tmp").mkdir(mode=0o1777)
        (root / "tmp").chmod(0o1777)
        (root / "usr" / "local" / "bin").mkdir(parents=True)
        for name, path in binaries.items():
            shutil.copy2(path, root / "usr" / "local" / "bin" / name)
            os.link(root / "usr" / "local" / "bin" / name, root / name)
        with open(os.devnull, "w") as quiet:
            import_rootfs(
                root,
                tag,
                ("ENV PATH=/usr/local/bin:/usr/bin:/bin", *changes),
                quiet,
            )


def _ensure_preloaded_images(work: Path, binaries: dict[str, Path], log: TextIO) -> Path:
    """One ``docker save`` tarball with every image kubeadm will ask for, under its tag."""
    required = _kubeadm_images(binaries["kubeadm"])
    wanted: dict[str, tuple[dict[str, Path], tuple[str, ...], str | None]] = {}
    for image in required:
        name = image.rsplit(":", 1)[0].rsplit("/", 1)[-1]
        if name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            wanted[image] = ({name: binaries[name]}, (), None)
        elif name == "kube-proxy":
            wanted[image] = (
                {name: binaries[name]},
                (),
                ensure_debian_image(KUBE_PROXY_BASE_RECIPE),
            )
        elif name == "etcd":
            # The control plane's etcd (3.6) served under kubeadm's etcd tag.
            wanted[image] = ({"etcd": binaries["etcd"]}, (), None)
        elif name == "coredns":
            if not image.endswith(":" + COREDNS_VERSION):
                raise BuildError(f"kubeadm wants {image}; update COREDNS_VERSION to its tag")
            wanted[image] = ({"coredns": binaries["coredns"]}, ('ENTRYPOINT ["/coredns"]',), None)
        elif name == "pause":
            wanted[image] = ({"pause": binaries["pause"]}, ('ENTRYPOINT ["/pause"]',), None)
        else:
            raise BuildError(f"kubeadm wants {image}, which this build does not know how to make")
    tarball = work / "preloaded-images.tar"
    progress(f"making {len(wanted)} images kubeadm wants: {', '.join(sorted(wanted))}")
    for image, (parts, changes, base) in wanted.items():
        if base is None:
            _import_static_binaries(image, parts, changes)
        else:
            _add_binaries_to_image(base, image, parts, log)
    partial = tarball.with_name(tarball.name + ".partial")
    run_docker(["save", "--output", str(partial), *wanted], log=log)
    partial.rename(tarball)
    # Those registry.k8s.io tags were only a way into the tarball; the engine keeps none.
    run_docker(["rmi", *wanted], log=log, check=False)
    return tarball


def _add_binaries_to_image(base: str, tag: str, binaries: dict[str, Path], log: TextIO) -> None:
    container = run_docker(["create", base, "/bin/true"], log=log).strip()
    try:
        for name, path in binaries.items():
            run_docker(["cp", str(path), f"{container}:/usr/local/bin/{name}"], log=log)
        run_docker(["commit", "--change", "CMD []", container, tag], log=log)
    finally:
        run_docker(["rm", "--force", container], log=log, check=False)


def _kubeadm_images(kubeadm: Path) -> list[str]:
    result = subprocess.run(
        [str(kubeadm), "config", "images", "list", "--kubernetes-version", KUBERNETES_VERSION],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"kubeadm config images list failed: {result.stderr.strip()}")
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def _wrapper_go_mod(name: str, module: str, version: str) -> str:
    """go.mod of a wrapper module that requires one pinned module."""
    return f"module regcred.dev/kind/{name}\n\ngo 1.26.0\n\nrequire {module} {version}\n"


def _require_go() -> None:
    if shutil.which("go") is None:
        raise BuildError("the Go toolchain (go) is not on PATH; install Go 1.26")


def _write_stamp(folder: Path, record: dict[str, object]) -> None:
    (folder / STAMP_NAME).write_text(json.dumps(record, indent=2) + "\n")


def _since(started: float) -> float:
    return round(time.monotonic() - started, 1)
