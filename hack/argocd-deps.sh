#!/usr/bin/env bash
# Prepare a Debian machine for the Argo CD tier of `make test`: Argo CD's repo-server
# fetches with git and caches in Redis, so install Debian's git and redis-server when
# absent. Nothing is started here; the tests run their own redis-server on 127.0.0.1.
set -euo pipefail

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "argocd-deps: needs root to install ${missing[*]}" >&2
  exit 1
fi
apt-get update -qq
# Debian starts the packaged service where an init system runs; the tests do not use it.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
