#!/usr/bin/env bash
# Make a host ready for isobench on rootless podman: Debian's podman and its rootless helpers,
# an unprivileged user with subordinate ids, and that user's podman API service. Idempotent:
# installs, creates and starts only what is missing. Prints the service's socket (a
# unix:// URL) as its only line on stdout, for `ISOBENCH_PODMAN_SOCKET`:
#
#   export ISOBENCH_PODMAN_SOCKET=$(scripts/ensure-podman.sh)   # as root
#   isobench run-commit --engine podman ...
#
# Run as root (or with sudo): it installs packages and creates the user. The service runs as
# that user ($ISOBENCH_PODMAN_USER, default isobench-podman), without a systemd user session:
#   * cgroup v2 hosts: a cgroup subtree with the cpu, cpuset, memory and pids controllers is
#     delegated to the user (chowned to it, as systemd's Delegate=yes does) and the service
#     starts inside it, so podman can set every limit isobench asks for;
#   * cgroup v1 (or hybrid) hosts: rootless podman cannot set any limit (podman ignores them
#     there, "Resource limits are not supported and ignored on cgroups V1 rootless systems");
#     isobench names the limits it cannot enforce in one line and records them with the host
#     facts. Docker, or podman on a cgroup v2 host, enforce them.
set -euo pipefail

say() { echo "ensure-podman: $*" >&2; }
USER_NAME=${ISOBENCH_PODMAN_USER:-isobench-podman}
WAIT_S=${ISOBENCH_PODMAN_WAIT:-60}
LOG=${ISOBENCH_PODMAN_LOG:-/var/log/isobench-podman-service.log}
CGROUP_NAME=isobench-podman  # the delegated subtree (cgroup v2 hosts)

# Commands rootless podman needs, and the Debian package that provides each. runc: Debian's
# default runtime crun refuses hybrid cgroup hosts ("drop all controllers from cgroupv2");
# catatonit: the init of `init=True` containers; uidmap: newuidmap/newgidmap; slirp4netns: the
# rootless network; fuse-overlayfs: overlay where the kernel cannot mount it in a user namespace.
declare -A PACKAGE_OF=([podman]=podman [newuidmap]=uidmap [slirp4netns]=slirp4netns
                       [fuse-overlayfs]=fuse-overlayfs [runc]=runc [curl]=curl)

missing_packages() {
  local cmd pkgs=()
  for cmd in "${!PACKAGE_OF[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || pkgs+=("${PACKAGE_OF[$cmd]}")
  done
  [ -x /usr/libexec/podman/catatonit ] || [ -x /usr/bin/catatonit ] || pkgs+=(catatonit)
  printf '%s\n' "${pkgs[@]}" | sort -u | grep -v '^$' || true
}

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    say "not root: re-running with sudo"
    exec sudo --preserve-env=ISOBENCH_PODMAN_USER,ISOBENCH_PODMAN_WAIT,ISOBENCH_PODMAN_LOG "$0" "$@"
  fi
  say "needs root to install podman and create the user $USER_NAME (and there is no sudo);"
  say "as yourself instead: \`podman system service --time=0 &\` and isobench --engine podman finds it"
  exit 1
fi

MISSING=$(missing_packages)
if [ -n "$MISSING" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing: $(echo $MISSING), and this host has no apt-get: install podman (>= 4.3),"
    say "uidmap, slirp4netns, fuse-overlayfs, catatonit and runc for your distribution, then rerun"
    exit 1
  fi
  say "installing $(echo $MISSING) ..."
  apt-get update -qq
  # shellcheck disable=SC2086  # one package per word
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
fi

# --- the user, its subordinate ids and its runtime directory
if ! id "$USER_NAME" >/dev/null 2>&1; then
  say "creating user $USER_NAME"
  useradd --create-home --shell /bin/bash "$USER_NAME"
fi
USER_ID=$(id -u "$USER_NAME")
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
for file in /etc/subuid /etc/subgid; do
  if ! grep -q "^$USER_NAME:" "$file" 2>/dev/null; then
    # the next free 65536 ids above every range already given out (and above 100000)
    start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$file" 2>/dev/null || echo 100000)
    say "giving $USER_NAME subordinate ids $start-$((start + 65535)) in $file"
    echo "$USER_NAME:$start:65536" >> "$file"
  fi
done
RUNTIME_DIR=/run/user/$USER_ID
install -d -m 700 -o "$USER_NAME" -g "$USER_NAME" "$RUNTIME_DIR" "$RUNTIME_DIR/podman"
SOCKET=$RUNTIME_DIR/podman/podman.sock

# --- the user's podman configuration (written once; an administrator's edits are kept)
CGROUP2=false
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && CGROUP2=true
CONF_DIR=$HOME_DIR/.config/containers
install -d -o "$USER_NAME" -g "$USER_NAME" "$HOME_DIR/.config" "$CONF_DIR"
if [ ! -f "$CONF_DIR/containers.conf" ]; then
  runtime=runc
  $CGROUP2 && command -v crun >/dev/null 2>&1 && runtime=crun
  # default_ulimits = []: podman raises NOFILE/NPROC by default, which unprivileged users (and
  # some VMs) are denied ("error setting rlimit"); containers inherit the service's instead.
  # cgroupfs and file events: there is no systemd user session (no D-Bus) to ask.
  cat > "$CONF_DIR/containers.conf" <<EOF
# written by isobench's scripts/ensure-podman.sh
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "$runtime"
EOF
  chown "$USER_NAME:" "$CONF_DIR/containers.conf"
fi
if [ ! -f "$CONF_DIR/storage.conf" ]; then
  # Native overlay when the kernel mounts it in a user namespace (5.13+), else fuse-overlayfs;
  # left alone, podman may settle on vfs, which copies every layer in full.
  if [ "$(uname -r | awk -F. '{print ($1 * 100 + $2 >= 513)}')" = 1 ]; then
    printf '[storage]\ndriver = "overlay"\n' > "$CONF_DIR/storage.conf"
  else
    printf '[storage]\ndriver = "overlay"\n[storage.options.overlay]\nmount_program = "/usr/bin/fuse-overlayfs"\n' \
      > "$CONF_DIR/storage.conf"
  fi
  chown "$USER_NAME:" "$CONF_DIR/storage.conf"
fi

# Rootless mounts need "/" to propagate mounts (systemd makes it shared; minimal inits don't).
if [ "$(findmnt -no PROPAGATION / 2>/dev/null)" = private ]; then
  mount --make-rshared /
fi

answers() {
  curl -sf --max-time 5 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1
}

# A service whose working directory was deleted (started from a checkout since removed) still
# answers pings, but conmon fails every container start ("Failed to get working directory"):
# stop it here, so that it is started again below, from the user's home.
for pid in $(pgrep -u "$USER_NAME" -f "podman system service" 2>/dev/null); do
  if readlink "/proc/$pid/cwd" 2>/dev/null | grep -q ' (deleted)$'; then
    say "restarting $USER_NAME's podman service: its working directory was deleted"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
done

if answers; then
  say "podman service of $USER_NAME answers at $SOCKET"
  echo "unix://$SOCKET"
  exit 0
fi

# --- cgroup v2: delegate a subtree to the user and start the service inside it
CGROUP_PROCS=""
if $CGROUP2; then
  root=/sys/fs/cgroup
  sub=$root/$CGROUP_NAME
  wanted="cpu cpuset memory pids"
  for controller in $wanted; do
    grep -qw "$controller" "$root/cgroup.controllers" || say "cgroup v2 has no $controller controller: podman cannot limit it"
    grep -qw "$controller" "$root/cgroup.subtree_control" \
      || echo "+$controller" > "$root/cgroup.subtree_control" 2>/dev/null \
      || say "cannot enable $controller for child cgroups (a process in the root cgroup's leaf?)"
  done
  mkdir -p "$sub" "$sub/service"
  # Delegation as systemd does it: the directory and its procs/subtree files owned by the user.
  chown "$USER_NAME:" "$sub" "$sub/cgroup.procs" "$sub/cgroup.subtree_control" \
    "$sub/cgroup.threads" "$sub/service" "$sub/service/cgroup.procs" "$sub/service/cgroup.threads"
  for controller in $wanted; do
    echo "+$controller" > "$sub/cgroup.subtree_control" 2>/dev/null || true
  done
  CGROUP_PROCS=$sub/service/cgroup.procs
fi

if pgrep -u "$USER_NAME" -f "podman system service" >/dev/null 2>&1; then
  say "a podman service of $USER_NAME runs but does not answer at $SOCKET yet; waiting"
else
  say "starting $USER_NAME's podman service at $SOCKET (log: $LOG) ..."
  touch "$LOG" && chown "$USER_NAME:" "$LOG"
  # As root, the shell moves itself into the delegated cgroup first (cgroup v2: moving a
  # process needs write access where source and target meet, which the user lacks), then
  # becomes the user; the service and its containers live there. setsid: it outlives us.
  # cd: the service (and conmon under it) needs a working directory that outlives this run.
  setsid env CGROUP_PROCS="$CGROUP_PROCS" bash -c '[ -z "$CGROUP_PROCS" ] || echo $$ > "$CGROUP_PROCS"
    cd "$1" && shift && exec "$@"' isobench-podman-service "$HOME_DIR" \
    runuser -u "$USER_NAME" -- env -i HOME="$HOME_DIR" USER="$USER_NAME" \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR="$RUNTIME_DIR" \
    podman system service --time=0 "unix://$SOCKET" \
    </dev/null >>"$LOG" 2>&1 &
fi

for _ in $(seq "$WAIT_S"); do
  if answers; then
    say "podman service of $USER_NAME answers at $SOCKET ($(podman --version 2>/dev/null || echo podman))"
    $CGROUP2 || say "cgroup v1 host: rootless podman enforces no cpu/cpuset/memory/pids limit here"
    echo "unix://$SOCKET"
    exit 0
  fi
  sleep 1
done
say "the podman service did not answer within ${WAIT_S}s; last lines of $LOG:"
tail -n 15 "$LOG" >&2 || true
exit 1
