#!/usr/bin/env bash
# Benchmark (not a test): `devenv db snapshot` / `devenv db restore` of a
# database of about 1 GB (pgbench tables, scale 68) against what restoring
# from a dump takes — `pg_dump -Fc` and `pg_restore` of the same data,
# run inside the same PostgreSQL container, side by side.
#   bench/snapshot.sh [RUNS] [SCALE]     (default 5 runs, scale 68 ≈ 1 GB; needs Docker)
set -euo pipefail
runs=${1:-5}
scale=${2:-68}
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

cat > "$work/dev.toml" <<TOML
[project]
name = "benchsnap"

[services.db]
use = "postgres"
ports = []
TOML
cd "$work"
"$devenv" --progress quiet up -d
db() { "$devenv" exec -T db -- "$@"; }
pgbench=$(db sh -c 'ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null || command -v pgbench' | head -n1)
echo "filling the database (pgbench scale $scale)…"
db "$pgbench" -i -q -s "$scale" -U app app >/dev/null 2>&1
size=$(db psql -U app -d app -tAc "select pg_size_pretty(pg_database_size('app'))")
rows=$(db psql -U app -d app -tAc "select count(*) from pgbench_accounts")

snap=() restore=() dump=() pgrestore=()
for i in $(seq 1 "$runs"); do
    t=$(now_ms); "$devenv" --progress quiet db snapshot "b$i"; snap+=($(( $(now_ms) - t )))
    db psql -U app -d app -qc "delete from pgbench_history; update pgbench_branches set bbalance = bbalance + 1"
    # The restore as the user waits for it: swap reported; the next spare is prepared after.
    out=$("$devenv" --progress plain db restore "b$i" 2>&1)
    restore+=($(sed -n 's/.*restored from snapshot `[^`]*` in \([0-9]*\) ms.*/\1/p' <<<"$out"))
    "$devenv" --progress quiet db drop-snapshot "b$i"
done
test "$(db psql -U app -d app -tAc 'select count(*) from pgbench_accounts')" = "$rows"
dump_runs=$(( runs < 3 ? runs : 3 ))
for i in $(seq 1 "$dump_runs"); do
    t=$(now_ms); db pg_dump -Fc -U app -d app -f /tmp/bench.dump; dump+=($(( $(now_ms) - t )))
    db psql -U app -d postgres -qc "drop database if exists benchrestore" -c "create database benchrestore"
    t=$(now_ms); db pg_restore -U app -d benchrestore /tmp/bench.dump; pgrestore+=($(( $(now_ms) - t )))
done
db rm -f /tmp/bench.dump

m_snap=$(printf '%s\n' "${snap[@]}" | median)
m_restore=$(printf '%s\n' "${restore[@]}" | median)
m_dump=$(printf '%s\n' "${dump[@]}" | median)
m_pgrestore=$(printf '%s\n' "${pgrestore[@]}" | median)
echo "database: $size ($rows pgbench_accounts rows); medians of $runs snapshot/restore and $dump_runs dump/restore runs"
printf '  %-44s %10s ms\n' "devenv db snapshot (two clones)" "$m_snap"
printf '  %-44s %10s ms\n' "devenv db restore (rename of a ready copy)" "$m_restore"
printf '  %-44s %10s ms\n' "pg_dump -Fc" "$m_dump"
printf '  %-44s %10s ms\n' "pg_restore into an empty database" "$m_pgrestore"
awk -v a="$m_pgrestore" -v b="$m_restore" 'BEGIN { printf "  %-44s %10.1fx\n", "pg_restore / devenv db restore", a / (b > 0 ? b : 1) }'
