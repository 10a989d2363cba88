#!/usr/bin/env bash
# The README's set-up and two commands on a clean Debian machine, with no other step: a fresh
# debootstrap minbase (no python3, git, docker or debootstrap in it) run as a container with
# its own Docker engine (started by scripts/ensure-docker.sh inside), a clean clone of BRANCH
# copied in. Prints each step's exit status and seconds. Needs root, debootstrap and Docker on
# this host; removes its container and volume at the end (never anything else). The whole
# pytest output is kept in $CLEAN_CHECK_LOG (default /tmp/isobench-clean-check-<pid>.log).
#
#   scripts/clean_machine_check.sh [BRANCH] [PYTEST ARGS...]
#
# The container is not --privileged (some hosts refuse it) but gets what an inner dockerd
# needs: all capabilities the host allows, no seccomp/apparmor, a writable cgroup fs. The
# host's CA bundle goes in as an extra CA (update-ca-certificates merges it) for hosts whose
# mirrors are reached through a TLS proxy.
set -u
BRANCH=${1:-$(git rev-parse --abbrev-ref HEAD)}
shift || true
PYTEST_ARGS=${*:-tests/unit tests/integration/test_run_commit.py tests/integration/test_sandbox.py tests/integration/test_preflight.py}
REPO=$(git rev-parse --show-toplevel)
WORK=$(mktemp -d /tmp/isobench-clean-XXXXXX)
NAME=isobench-clean-$$
IMAGE=isobench-clean-debian:bookworm
CA=/etc/ssl/certs/ca-certificates.crt
LOG=${CLEAN_CHECK_LOG:-/tmp/isobench-clean-check-$$.log}
trap 'docker rm -f $NAME >/dev/null 2>&1; docker volume rm $NAME-docker >/dev/null 2>&1; rm -rf "$WORK"' EXIT

if ! docker image inspect $IMAGE >/dev/null 2>&1; then
  echo "building $IMAGE (debootstrap bookworm minbase) ..."
  debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >/dev/null
  tar -C "$WORK/rootfs" --numeric-owner -c . | docker import -c 'CMD ["bash"]' - $IMAGE >/dev/null
fi
git clone -q --branch "$BRANCH" "$REPO" "$WORK/clone"
echo "clone at $(git -C "$WORK/clone" log --oneline -1)"
CAP_ALL=(--cap-add ALL)
# a host that holds back some capability (e.g. CAP_SYS_RESOURCE in a container) refuses ALL
docker run --rm --cap-add ALL $IMAGE true >/dev/null 2>&1 || CAP_ALL+=(--cap-drop SYS_RESOURCE)
docker run -d --name $NAME "${CAP_ALL[@]}" --security-opt seccomp=unconfined \
  --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v $NAME-docker:/var/lib/docker \
  -v $CA:/usr/local/share/ca-certificates/host-bundle.crt:ro \
  -e PIP_CERT=/usr/local/share/ca-certificates/host-bundle.crt $IMAGE sleep infinity >/dev/null
docker cp "$WORK/clone" $NAME:/root/isobench
step() {
  echo "=== $1"; local t0; t0=$(date +%s)
  docker exec -w /root/isobench $NAME bash -c "$2" 2>&1 | tail -n "${3:-25}"
  echo "=== rc=${PIPESTATUS[0]} $1: $(( $(date +%s) - t0 )) s"
}
step "on the clean machine before set-up" "command -v python3 docker debootstrap git; cat /etc/debian_version"
step "scripts/ensure-docker.sh" "scripts/ensure-docker.sh"
step "venv + pip install" "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'" 8
step "isobench doctor" ".venv/bin/isobench doctor"
step "isobench run-commit a0476e8c --state-dir state" ".venv/bin/isobench run-commit a0476e8c --state-dir state" 30
step "isobench run-commit (again: reuses the images)" ".venv/bin/isobench run-commit a0476e8c --state-dir state" 12
step "pytest $PYTEST_ARGS" ".venv/bin/python -m pytest -q $PYTEST_ARGS > pytest.log 2>&1; code=\$?; tail -n 15 pytest.log; exit \$code" 15
docker cp $NAME:/root/isobench/pytest.log "$LOG" >/dev/null && echo "whole pytest output: $LOG"
