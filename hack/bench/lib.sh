# hack/bench/lib.sh: sourced by the benchmarks that run berthd and Debian's containerd side by
# side (hack/bench/pods, hack/bench/exec). `bench_prepare NAME` checks for root, installs what
# they compare with, builds berth (hack/build) and the CRI driver (cri_bench), and exports
# BENCH_REPO and BENCH_NAME for hack/bench/sidebyside.py, the Python half: registry, images,
# both daemons, and the cleanup at exit. A script then runs its Python with
#   exec python3 - ARGS <<'PY'
#   import sys, os; sys.path.insert(0, os.environ["BENCH_REPO"] + "/hack/bench")
#   import sidebyside as sb
bench_prepare() {
  local name=$1
  cd "$(dirname "${BASH_SOURCE[0]}")/../.."
  [ "$(id -u)" = 0 ] || { echo "hack/bench/$name: run as root" >&2; exit 1; }
  hack/setup >/dev/null
  command -v containerd >/dev/null || \
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends containerd; } >/dev/null
  local build_log
  build_log=$(mktemp)
  hack/build >"$build_log" 2>&1 || { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
  rm -f "$build_log"
  cargo build -q --release -p berth-cri-server --example cri_bench
  export BENCH_REPO=$PWD BENCH_NAME=$name
}
