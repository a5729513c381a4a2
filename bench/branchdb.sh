#!/usr/bin/env bash
# Benchmark (not a test): switching git branches with a database per branch
# (`devenv db branch on`): the rename that swaps the branch's database in,
# and the whole `devenv db branch` command, on a database of pgbench tables.
#   bench/branchdb.sh [RUNS] [SCALE]     (default 7 runs, scale 10 ≈ 160 MB; needs Docker and git)
set -euo pipefail
runs=${1:-7}
scale=${2:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
(cd "$repo" && cargo build --locked -q)
devenv=$repo/target/debug/devenv
cleanup() {
    (cd "$work" && "$devenv" --progress quiet down -v >/dev/null 2>&1) || true
    rm -rf "$work"
}
trap cleanup EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'; }
now_ms() { date +%s%3N; }
g() { git -c user.name=bench -c user.email=bench@localhost "$@"; }

cat > "$work/dev.toml" <<TOML
[project]
name = "benchbranch"

[services.db]
use = "postgres"
ports = []
TOML
cd "$work"
g init -q -b main && g add dev.toml && g commit -qm init
"$devenv" --progress quiet up -d
db() { "$devenv" exec -T db -- "$@"; }
pgbench=$(db sh -c 'ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null || command -v pgbench' | head -n1)
echo "filling the database (pgbench scale $scale)…"
db "$pgbench" -i -q -s "$scale" -U app app >/dev/null 2>&1
size=$(db psql -U app -d app -tAc "select pg_size_pretty(pg_database_size('app'))")
"$devenv" --progress quiet db branch on
g checkout -q -b feature
t=$(now_ms); "$devenv" --progress quiet db branch; first=$(( $(now_ms) - t ))

swap=() whole=()
for i in $(seq 1 "$runs"); do
    for b in main feature; do
        g checkout -q "$b"
        t=$(now_ms)
        out=$("$devenv" --progress plain db branch 2>&1)
        whole+=($(( $(now_ms) - t )))
        swap+=($(sed -n 's/.*swapped in (\([0-9]*\) ms).*/\1/p' <<<"$out"))
    done
done
echo "database: $size; medians of $(( runs * 2 )) switches"
printf '  %-52s %8s ms\n' "first visit of a branch (clone + swap)" "$first"
printf '  %-52s %8s ms\n' "switch: the rename that swaps the database in" "$(printf '%s\n' "${swap[@]}" | median)"
printf '  %-52s %8s ms\n' "switch: the whole \`devenv db branch\` command" "$(printf '%s\n' "${whole[@]}" | median)"
