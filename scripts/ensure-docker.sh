#!/usr/bin/env bash
# Make a host ready for isobench: a Docker engine that answers, debootstrap (the offline base
# image), and Python's venv + git. Idempotent: installs and starts only what is missing.
#
#   scripts/ensure-docker.sh        # as root, or as a user with sudo (it re-runs itself so)
#
# Installs Debian's docker.io / debootstrap / python3-venv / git when missing (apt hosts only),
# starts the engine with systemd when systemd runs, else as a background daemon, and waits
# until it answers.
set -euo pipefail

say() { echo "ensure-docker: $*" >&2; }
answers() { docker info >/dev/null 2>&1; }
LOG=${ISOBENCH_DOCKERD_LOG:-/var/log/isobench-dockerd.log}
WAIT_S=${ISOBENCH_DOCKERD_WAIT:-90}

# Commands isobench needs on the host, and the Debian package that provides each.
declare -A PACKAGE_OF=([dockerd]=docker.io [docker]=docker.io [debootstrap]=debootstrap
                       [git]=git)

missing_packages() {
  local cmd pkgs=()
  for cmd in "${!PACKAGE_OF[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || pkgs+=("${PACKAGE_OF[$cmd]}")
  done
  # `python3 -m venv` needs ensurepip, which Debian ships apart from python3
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then pkgs+=(python3-venv); fi
  printf '%s\n' "${pkgs[@]}" | sort -u | grep -v '^$' || true
}

MISSING=$(missing_packages)
if command -v docker >/dev/null 2>&1 && answers && [ -z "$MISSING" ]; then
  say "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')); debootstrap, git, python3-venv present"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    say "not root: re-running with sudo"
    exec sudo --preserve-env=ISOBENCH_DOCKERD_LOG,ISOBENCH_DOCKERD_WAIT "$0" "$@"
  fi
  say "needs root for: ${MISSING:-starting the Docker engine} (and there is no sudo here);"
  say "run it as root, or ask an administrator to start Docker and add you to the 'docker' group"
  exit 1
fi

if [ -n "$MISSING" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # one package per word
    say "installing $(echo $MISSING) ..."
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates $MISSING >/dev/null
  else
    say "missing: $(echo $MISSING), and this host has no apt-get: install Docker Engine"
    say "(https://docs.docker.com/engine/install/) and debootstrap for your distribution, then rerun"
    exit 1
  fi
fi

if answers; then
  say "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
  exit 0
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  say "starting docker with systemd ..."
  systemctl start docker || true
fi

if ! answers; then
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but not answering yet; waiting"
  else
    say "starting dockerd in the background (log: $LOG) ..."
    # setsid: the daemon must outlive this script and the shell that ran it
    setsid dockerd >"$LOG" 2>&1 < /dev/null &
  fi
fi

for _ in $(seq "$WAIT_S"); do
  if answers; then
    say "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within ${WAIT_S}s; last lines of $LOG:"
tail -n 15 "$LOG" >&2 || true
exit 1
