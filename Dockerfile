# The operator's container image:
#   docker build --build-arg VERSION=X.Y.Z -t ghcr.io/regcred/regcred-operator:X.Y.Z .
# (`make release` builds, pushes, signs and describes it; README, "Releases".)
#
# It installs what `pip install .` installs (README, "Install from source"): the
# project and its [project].dependencies from pyproject.toml, never the test extras
# and never the workshop (dev/), less the parts of the kubernetes client that nothing
# imports (see the builder).
#
# The base is pinned by tag only. Pin it by digest as well (python:3.11-slim@sha256:...)
# where the registry can be reached to look the digest up; it could not be where this
# file was written. PYTHON_IMAGE swaps in another Python 3.11+ base with pip, as the
# real-node tests do with one made locally (--build-arg PYTHON_IMAGE=...).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
# Runtime dependencies as wheels, read from [project].dependencies so the test extras
# never enter. Only pyproject.toml is copied above, so source edits reuse this layer.
RUN ["python", "-c", "import subprocess, sys, tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-cache-dir', '--disable-pip-version-check', '--wheel-dir', '/wheels', *deps], check=True)"]
# Of the kubernetes client, only what regcred imports: no asyncio client, no generated
# API classes (hack/slim_kubernetes_wheel.py says why; docs/install.md has the figures).
COPY hack/slim_kubernetes_wheel.py hack/
RUN ["python", "hack/slim_kubernetes_wheel.py", "/wheels"]
COPY operator/ operator/
RUN ["pip", "wheel", "--no-cache-dir", "--disable-pip-version-check", "--no-deps", "--wheel-dir", "/wheels", "."]

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="regcred-operator" \
      org.opencontainers.image.description="Replicates image pull secrets into matching namespaces and patches ServiceAccounts" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The wheels are mounted, not copied, so they leave no layer behind (a BuildKit mount:
# the default builder since Docker 23). --no-index makes the builder's wheels the only
# source of every package, so the unversioned name below can only mean the one wheel
# built above; that is why DL3013 (pin versions in pip) does not apply here.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    ["pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-index", "--find-links", "/wheels", "regcred-operator"]
# A numeric user, so that runAsNonRoot can verify it without an /etc/passwd entry.
USER 65532:65532
# Last, so that a new commit or version reuses every layer above.
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/regcred/regcred-operator"
# 8080: Prometheus /metrics; 8081: /healthz and /readyz (regcred run's defaults).
EXPOSE 8080 8081
# The command is the subcommand: the Deployment's args start with `run`, and a bare
# `docker run IMAGE` runs the operator too.
ENTRYPOINT ["regcred"]
CMD ["run"]
