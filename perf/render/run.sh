#!/usr/bin/env bash
# perf/render/run.sh: reproduce every figure of "Rendering response JSON" in
# docs/design.md with one command. See README.md.
#
#   perf/render/run.sh            full run (~3 min)
#   OUT=DIR PGDIR=DIR RUNS=3 DURATION=10 REPS=9 perf/render/run.sh
#
# Writes OUT/results.md (the tables) plus raw outputs; builds nothing in the
# source tree; starts a throwaway PostgreSQL in PGDIR and destroys it at exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${OUT:-/tmp/ringlet-render}"
PGDIR="${PGDIR:-/tmp/h10pg}"
RUNS="${RUNS:-3}"          # pgbench runs per (table, form); medians reported
DURATION="${DURATION:-10}" # seconds per pgbench run
REPS="${REPS:-9}"          # timed repetitions per render case; median reported
ITERS="${ITERS:-200}"      # renders counted under callgrind per case
EXPR_RUNS="${EXPR_RUNS:-9}" # executor-only scans per (table, form)

mkdir -p "$OUT/fixtures" "$OUT/pgbench" "$OUT/callgrind"

# --- 1. build the benchmark against the project's codec (Release flags) ---------
cc -O3 -DNDEBUG -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -I"$ROOT/include" \
    "$ROOT/src/codec.c" "$ROOT/src/buf.c" "$HERE/render_bench.c" \
    $(pkg-config --cflags --libs json-c) -o "$OUT/render_bench"

# --- 2. throwaway PostgreSQL, seeded ------------------------------------------------
cleanup() { "$ROOT/scripts/pg" destroy "$PGDIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT
URL="$("$ROOT/scripts/pg" start "$PGDIR")"
psql -X -q -v ON_ERROR_STOP=1 -d "$URL" -f "$HERE/schema.sql"
for t in typical:items large:items_large; do
    psql -X -At -v ON_ERROR_STOP=1 -v tbl="${t#*:}" -d "$URL" -f "$HERE/fixture.sql" \
        >"$OUT/fixtures/${t%%:*}.txt"
done
PGVER="$(psql -X -At -d "$URL" -c 'SHOW server_version')"

# --- 3. C side: wall time and instruction counts -------------------------------------
B="$OUT/render_bench --fixtures $OUT/fixtures"
$B show >"$OUT/outputs.txt"
PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"
$PIN $B time "$REPS" | tee "$OUT/time.txt"

: >"$OUT/callgrind.txt"; : >"$OUT/pgbench.txt"
for size in typical large; do
    for v in A B C; do
        f="$OUT/callgrind/$v.$size.out"
        valgrind --tool=callgrind --toggle-collect="loop_$v" --callgrind-out-file="$f" \
            $B count "$v" "$size" "$ITERS" 2>/dev/null
        ir="$(awk '/^(summary|totals):/ {print $2; exit}' "$f")"
        echo "$size $v $((ir / ITERS))" | tee -a "$OUT/callgrind.txt"
    done
done

# --- 4. server side: pgbench, the two SQL forms, interleaved runs --------------------
for table in items items_large; do
    for form in cols json; do
        sed "s/@TABLE@/$table/" "$HERE/get_$form.sql" >"$OUT/pgbench/$table.$form.sql"
    done
done
for table in items items_large; do
    for run in $(seq 1 "$RUNS"); do
        for form in cols json; do
            log="$OUT/pgbench/$table.$form.$run.log"
            pgbench -n -M prepared -c 4 -j 2 -T "$DURATION" -f "$OUT/pgbench/$table.$form.sql" \
                "$URL" >"$log" 2>&1
            tps="$(awk '/^tps = / {print $3; exit}' "$log")"
            lat="$(awk '/^latency average = / {print $4; exit}' "$log")"
            echo "$table $form $run $tps $lat" | tee -a "$OUT/pgbench.txt"
        done
    done
done

# --- 4b. server side, executor only: the per-row expression cost over all 10,000 rows
# (EXPLAIN ANALYZE execution time of a full scan that computes what each form
# makes the server produce, then sums lengths so no rows cross the wire).
TS="'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
CR="to_char(created_at AT TIME ZONE 'UTC', $TS)"
UP="to_char(updated_at AT TIME ZONE 'UTC', $TS)"
EXPR_cols="length(id::text) + length(name) + length(data::text) + length(version::text) + length($CR) + length($UP)"
EXPR_json="length(json_build_object('id', id, 'name', name, 'data', data, 'version', version, 'created_at', $CR, 'updated_at', $UP)::text) + length(version::text)"
: >"$OUT/expr.txt"
for table in items items_large; do
    for form in cols json; do # warm-up (caches, first-run planning), not recorded
        expr="EXPR_$form"
        psql -X -q -d "$URL" -c "SELECT sum(${!expr}) FROM $table" >/dev/null
    done
    for run in $(seq 1 "$EXPR_RUNS"); do
        for form in cols json; do
            expr="EXPR_$form"
            ms="$(psql -X -At -d "$URL" -c "EXPLAIN (ANALYZE, TIMING OFF) SELECT sum(${!expr}) FROM $table" |
                awk '/Execution Time/ {print $3}')"
            echo "$table $form $run $ms" | tee -a "$OUT/expr.txt"
        done
    done
done

# --- 5. summary ----------------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
NCPU="$(nproc)"
{
    echo "# render benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $NCPU CPUs, PostgreSQL $PGVER, json-c $(pkg-config --modversion json-c)"
    echo
    echo "## C side, per item (render_bench: median of $REPS timed runs; callgrind Ir / $ITERS renders)"
    echo
    echo "| item | option | bytes out | ns/op (median) | ns/op (min) | instructions/op |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
    for size in typical large; do
        for v in A B C; do
            read -r bytes ns nsmin < <(awk -v s="$size" -v v="$v" '$1==s && $2==v {print $4, $5, $6}' "$OUT/time.txt")
            ir="$(awk -v s="$size" -v v="$v" '$1==s && $2==v {print $3}' "$OUT/callgrind.txt")"
            echo "| $size | $v | $bytes | $ns | $nsmin | $ir |"
        done
    done
    echo
    echo "## Server side (pgbench -M prepared -c 4 -j 2 -T $DURATION, median of $RUNS runs)"
    echo
    echo "| table | SQL form | tps | latency avg (ms) | CPU µs/query ($NCPU CPUs / tps) |"
    echo "| --- | --- | ---: | ---: | ---: |"
    for table in items items_large; do
        for form in cols json; do
            tps="$(awk -v t="$table" -v f="$form" '$1==t && $2==f {print $4}' "$OUT/pgbench.txt" | median)"
            lat="$(awk -v t="$table" -v f="$form" '$1==t && $2==f {print $5}' "$OUT/pgbench.txt" | median)"
            cpu="$(awk -v n="$NCPU" -v t="$tps" 'BEGIN {printf "%.1f", n * 1e6 / t}')"
            name=$([[ $form == cols ]] && echo "A/B: 6 text columns" || echo "C: json_build_object")
            echo "| $table | $name | $(printf %.0f "$tps") | $lat | $cpu |"
        done
    done
    echo
    echo "## Server side, executor only (EXPLAIN ANALYZE of the expressions over all 10,000 rows, median and min of $EXPR_RUNS)"
    echo
    echo "| table | SQL form | ms per 10,000 rows (median) | µs/row (median) | µs/row (min) |"
    echo "| --- | --- | ---: | ---: | ---: |"
    for table in items items_large; do
        for form in cols json; do
            ms="$(awk -v t="$table" -v f="$form" '$1==t && $2==f {print $4}' "$OUT/expr.txt" | median)"
            name=$([[ $form == cols ]] && echo "A/B: 6 text columns" || echo "C: json_build_object")
            min="$(awk -v t="$table" -v f="$form" '$1==t && $2==f {print $4}' "$OUT/expr.txt" | sort -g | head -1)"
            echo "| $table | $name | $ms | $(awk -v m="$ms" 'BEGIN {printf "%.2f", m / 10}') | $(awk -v m="$min" 'BEGIN {printf "%.2f", m / 10}') |"
        done
    done
} | tee "$OUT/results.md"
