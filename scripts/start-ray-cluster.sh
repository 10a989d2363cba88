#!/usr/bin/env bash
# A Ray cluster over GPU hosts for `isobench run --backend ray`, and a plan submitted to it.
#
#   on the head node:     scripts/start-ray-cluster.sh head   [ray start options...]
#   on each GPU node:     scripts/start-ray-cluster.sh worker HEAD_HOST[:PORT] [options...]
#   on the head node:     scripts/start-ray-cluster.sh submit PLAN [isobench run options...]
#   on every node, after: scripts/start-ray-cluster.sh stop
#
# Every node needs, before it joins:
#   * Docker with nvidia-container-toolkit (`isobench doctor` says "gpu runtime ok"): each
#     attempt runs its sandboxes on the engine of the node it lands on;
#   * isobench with the ray extra, in the same Python version as the driver's
#     (`pip install 'isobench[ray]'`, or this checkout: `pip install -e '.[ray]'`);
#   * the task's inputs at the same paths: repository mirrors (ISOBENCH_VLLM_MIRROR for
#     vllm_core), --repo and --task paths. Patch, agent-script and task files named on the
#     command line travel with the plan; repositories do not.
# The head may have no GPU (it then only schedules). The driver (`submit`) keeps the state dir:
# every attempt's files come back to it, whichever node ran the attempt.
#
# Settings (environment): RAY_PORT (6379), NUM_GPUS (default: the GPUs nvidia-smi lists; on a
# host without GPUs, e.g. a rehearsal, set it: logical GPUs are scheduled but not passed into
# sandboxes), ISOBENCH (the isobench command; default `isobench`).
# Keep the Ray port inside the cluster's private network: Ray runs whatever it is sent.
set -euo pipefail

say() { echo "start-ray-cluster: $*" >&2; }
RAY_PORT=${RAY_PORT:-6379}
ISOBENCH=${ISOBENCH:-isobench}

gpus() {
  if [ -n "${NUM_GPUS:-}" ]; then echo "$NUM_GPUS"; return; fi
  if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L | grep -c '^GPU' || true
  else echo 0; fi
}

check_node() {
  # A node that cannot run sandboxes would fail every attempt Ray sends it.
  if ! $ISOBENCH doctor; then
    say "isobench doctor found a blocking problem on $(hostname); fix it before joining"
    exit 1
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  head)
    check_node
    say "head on port $RAY_PORT with $(gpus) GPU(s)"
    ray start --head --port "$RAY_PORT" --num-gpus "$(gpus)" --disable-usage-stats "$@"
    say "workers join with: scripts/start-ray-cluster.sh worker $(hostname -f):$RAY_PORT"
    ;;
  worker)
    head=${1:?usage: start-ray-cluster.sh worker HEAD_HOST[:PORT]}
    shift
    case "$head" in *:*) ;; *) head="$head:$RAY_PORT" ;; esac
    check_node
    say "joining $head with $(gpus) GPU(s)"
    ray start --address "$head" --num-gpus "$(gpus)" "$@"
    ;;
  submit)
    plan=${1:?usage: start-ray-cluster.sh submit PLAN [isobench run options]}
    shift
    ray status || { say "no Ray cluster answers here; start the head first"; exit 1; }
    # One task per attempt, num_gpus=1 each (--gpus-per-item N for more); Ctrl-C stops them.
    exec $ISOBENCH run "$plan" --backend ray --ray-address auto "$@"
    ;;
  stop)
    ray stop  # this node's Ray processes; running attempts are retried on --resume
    ;;
  *)
    sed -n '2,7p' "$0" >&2
    exit 2
    ;;
esac
