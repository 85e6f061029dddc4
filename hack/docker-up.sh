#!/usr/bin/env bash
# Prepare a Debian machine for the real-node (kind) tier, as a root user would on one
# without systemd: install Debian's docker.io and debootstrap (the node and base images
# are made locally, with no registry) when absent, and start dockerd when no engine
# answers. An engine that already answers is left alone.
set -euo pipefail

DOCKER=/usr/bin/docker  # Debian's client: builds need its BuildKit support
LOG=${REGCRED_DOCKERD_LOG:-${TMPDIR:-/tmp}/regcred-dockerd.log}

missing=()
command -v dockerd >/dev/null 2>&1 && [ -x "$DOCKER" ] || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -eq 0 ] && "$DOCKER" info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker-up: needs root to install ${missing[*]:-nothing} and start dockerd" >&2
  exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! pgrep -x dockerd >/dev/null; then
  nohup dockerd >"$LOG" 2>&1 &
fi
for _ in $(seq 60); do
  if "$DOCKER" info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-up: dockerd did not answer within 60 s; see $LOG" >&2
exit 1
