# bench/lib.sh: what the one-stack benchmarks start with (sourced, not run):
# `repo`, a scratch folder `work` taken down and removed on exit (its
# project, if `$work/dev.toml` was written), and `devenv`, the release
# build unless DEVENV names a binary (`build` says which, for the figures).
# A script with more to stop first (a server it started) defines
# `bench_stop_first` before sourcing this.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
cleanup() {
  if declare -F bench_stop_first >/dev/null; then bench_stop_first; fi
  [ -f "$work/dev.toml" ] && (cd "$work" && "$devenv" --progress quiet down >/dev/null 2>&1 || true)
  rm -rf "$work"
}
trap cleanup EXIT

# DEVENV=/path/to/devenv skips the release build (figures then say which build).
if [ -z "${DEVENV:-}" ]; then
  (cd "$repo" && cargo build --release --locked -q)
fi
devenv=$(realpath "${DEVENV:-$repo/target/release/devenv}")
build=$(basename "$(dirname "$devenv")")
