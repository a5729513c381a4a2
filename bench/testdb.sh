#!/usr/bin/env bash
# Benchmark (not a test): how fast `devenv test` gets each run/worker a
# ready test database, cloned from the migrated template, against what a
# suite without it does — `php artisan migrate:fresh` — on a copy of the
# example app with 100 generated migrations (never the example app itself);
# and the spare a previous run cloned while its tests ran (a rename).
# Also `devenv test` wall time on the example suite: first run (services
# started, template built) vs repeat.
#   bench/testdb.sh [RUNS]        (default 7; needs Docker)
set -euo pipefail
runs=${1:-7}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
(cd "$repo" && cargo build --locked -q)
devenv=$repo/target/debug/devenv
cleanup() {
    for p in bench100 benchexample; do
        (cd "$work/$p" 2>/dev/null && "$devenv" --progress quiet down -v >/dev/null 2>&1) || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'; }
now_ms() { date +%s%3N; }

# The fixture: the example app plus 100 migrations, each a table with an index.
app=$work/app100
cp -r "$repo/examples/laravel" "$app"
for i in $(seq -w 1 100); do
    cat > "$app/database/migrations/2024_03_01_000${i}_create_bench_${i}_table.php" <<PHP
<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

return new class extends Migration
{
    public function up()
    {
        Schema::create('bench_${i}', function (Blueprint \$table) {
            \$table->id();
            \$table->string('name')->index();
            \$table->text('body')->nullable();
            \$table->foreignId('note_id')->nullable()->constrained('notes');
            \$table->timestamps();
        });
    }

    public function down()
    {
        Schema::dropIfExists('bench_${i}');
    }
};
PHP
done
# `migrate:fresh` runs in the app's own tree (mounted read-write below).
chmod -R a+rwX "$app/storage" "$app/bootstrap/cache"

stack() { # project, app folder, extra app keys
    cat <<TOML
[project]
name = "$1"

[services.db]
use = "postgres"
ports = []

[services.cache]
use = "redis"
ports = []

[services.app]
build = { context = "$repo", dockerfile = "docker/app/Dockerfile", target = "dev" }
image = "devenv-testrun-app:dev"
env = { APP_KEY = "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", DB_HOST = "db", DB_DATABASE = "app", DB_USERNAME = "app", DB_PASSWORD = "secret", REDIS_HOST = "cache", LOG_CHANNEL = "stderr" }
depends_on = { db = "ready", cache = "ready" }
$3

[test]
source = "$2"
env = { APP_ENV = "testing", CACHE_DRIVER = "array", QUEUE_CONNECTION = "sync", MAIL_MAILER = "array", SESSION_DRIVER = "array" }
TOML
}
mkdir -p "$work/bench100" "$work/benchexample"
stack bench100 "$app" "volumes = [\"$app:/var/www/html\"]" > "$work/bench100/dev.toml"
stack benchexample "$repo/examples/laravel" "" > "$work/benchexample/dev.toml"

# ---- 100 migrations: clone vs migrate:fresh --------------------------------
cd "$work/bench100"
"$devenv" --progress quiet test >/dev/null          # builds images and the template once
clones=(); spares=()
ready_ms() { sed -n "s/.*ready in \([0-9.]*\) ms ($1.*/\1/p"; }
for _ in $(seq "$runs"); do
    # --fresh: a new template, so every worker's database is cloned now…
    out=$("$devenv" --progress plain test --fresh --parallel 4 2>&1 >/dev/null)
    while read -r ms; do clones+=("$ms"); done < <(ready_ms cloned <<<"$out")
    # …and the run after it renames the spares cloned while those tests ran.
    out=$("$devenv" --progress plain test --parallel 4 2>&1 >/dev/null)
    while read -r ms; do spares+=("$ms"); done < <(ready_ms "a spare" <<<"$out")
done
clone_ms=$(printf '%s\n' "${clones[@]}" | median)
spare_ms=$(printf '%s\n' "${spares[@]}" | median)

"$devenv" exec db -- psql -U app -d postgres -qc 'CREATE DATABASE bench_fresh' >/dev/null
# Timed inside one container, so container start-up is not counted against it.
fresh=$("$devenv" --progress quiet run --rm app -- sh -c "
    for i in \$(seq $runs); do
        s=\$(date +%s%3N)
        DB_DATABASE=bench_fresh php artisan migrate:fresh --force >/dev/null || exit 1
        echo \$((\$(date +%s%3N) - s))
    done")
fresh_ms=$(median <<<"$fresh")
migrations=$(ls "$app/database/migrations" | wc -l)

# ---- devenv test wall time: first run vs repeat ------------------------------
walls() { # folder → "first median"
    cd "$1"
    "$devenv" --progress quiet down -v >/dev/null 2>&1 || true
    local s first
    s=$(now_ms); "$devenv" --progress quiet test >/dev/null; first=$(($(now_ms) - s))
    local rep=()
    for _ in $(seq "$runs"); do
        s=$(now_ms); "$devenv" --progress quiet test >/dev/null; rep+=($(($(now_ms) - s)))
    done
    echo "$first $(printf '%s\n' "${rep[@]}" | median)"
}
read -r ex_first ex_repeat < <(walls "$work/benchexample")
read -r big_first big_repeat < <(walls "$work/bench100")

echo "test database ready per run/worker, $migrations migrations (medians: ${#clones[@]} clones, ${#spares[@]} spares, $runs migrate:fresh)"
printf '  %-48s %7s ms\n' "template clone (CREATE DATABASE … TEMPLATE)" "$clone_ms"
printf '  %-48s %7s ms\n' "spare cloned during the previous run (RENAME)" "$spare_ms"
printf '  %-48s %7s ms\n' "php artisan migrate:fresh" "$fresh_ms"
awk -v c="$clone_ms" -v f="$fresh_ms" 'BEGIN { printf "  %-48s %7.1fx\n", "migrate:fresh / clone", f / c }'
awk -v c="$spare_ms" -v f="$fresh_ms" 'BEGIN { printf "  %-48s %7.1fx\n", "migrate:fresh / spare", f / c }'
echo "devenv test wall time (first: services started and template built; repeat: median of $runs)"
awk -v a="$ex_first" -v b="$ex_repeat" 'BEGIN { printf "  %-48s %6.2f s first, %6.2f s repeat\n", "example suite (1 migration)", a / 1000, b / 1000 }'
awk -v a="$big_first" -v b="$big_repeat" -v n="$migrations" 'BEGIN { printf "  %-48s %6.2f s first, %6.2f s repeat\n", "example suite + 100 migrations (" n ")", a / 1000, b / 1000 }'
