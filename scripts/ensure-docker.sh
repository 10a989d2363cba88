#!/usr/bin/env bash
# Make sure a Docker engine answers on this host; idempotent (does nothing if one answers).
#
#   sudo scripts/ensure-docker.sh
#
# Installs Debian's docker.io when dockerd is missing (apt hosts only), starts the engine with
# systemd when systemd runs, else as a background daemon, and waits until it answers.
set -euo pipefail

say() { echo "ensure-docker: $*" >&2; }
answers() { docker info >/dev/null 2>&1; }
LOG=${ISOBENCH_DOCKERD_LOG:-/var/log/isobench-dockerd.log}
WAIT_S=${ISOBENCH_DOCKERD_WAIT:-90}

if command -v docker >/dev/null 2>&1 && answers; then
  say "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  say "no Docker engine answers and this is not root; run: sudo $0"
  say "(or ask an administrator to start Docker and add you to the 'docker' group)"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's docker.io ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  else
    say "dockerd is not installed and this host has no apt-get: install Docker Engine for"
    say "your distribution (https://docs.docker.com/engine/install/), then rerun"
    exit 1
  fi
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
