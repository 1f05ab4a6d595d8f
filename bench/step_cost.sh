#!/usr/bin/env bash
# What step mode costs a hot-key increment when no key is in step mode: the workers' CPU time per
# increment (ns, from /proc/PID/task/*/schedstat, which counts only time on a CPU and so is far
# less sensitive than req/s to a busy machine) of this build and of BASELINE (one built from
# before the feature), in turn, ROUNDS rounds of wrk -t1 -c8 POST /counter/hot/increment for SECS
# seconds on -w 2 --lock-mode mutex --preload, loopback only. Prints each binary's median
# [min..max] and the median of the per-round ratios.
# usage: BASELINE=path/to/forklock [FORKLOCK=path] [ROUNDS=9] bench/step_cost.sh [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3}; ROUNDS=${ROUNDS:-9}; FORKLOCK=${FORKLOCK:-build/server/forklock}
[ -n "${BASELINE:-}" ] || { echo "set BASELINE=path/to/a/forklock built without the feature"; exit 2; }
command -v wrk >/dev/null || { echo "missing wrk: apt-get install wrk"; exit 2; }
tmp=$(mktemp -d); master=0
cleanup() { [ "$master" != 0 ] && kill "$master" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
printf 'wrk.method = "POST"\n' >"$tmp/post.lua"

worker_ns() { # the CPU time, in ns, of every thread of the master's children
    local total=0
    for pid in $(pgrep -P "$master"); do
        for f in /proc/"$pid"/task/*/schedstat; do total=$((total + $(cut -d' ' -f1 "$f"))); done
    done
    echo "$total"
}

one_round() { # binary -> ns of worker CPU per acknowledged increment
    "$1" -b 127.0.0.1:8291 -w 2 --lock-mode mutex --preload --data-dir "$tmp/data" \
        --log-level warning 2>"$tmp/log" &
    master=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:8291/healthz >/dev/null && break; sleep 0.05; done
    curl -sf -X DELETE http://127.0.0.1:8291/counter/hot >/dev/null
    local before; before=$(worker_ns)
    wrk -t1 -c8 -d"${SECS}s" -s "$tmp/post.lua" http://127.0.0.1:8291/counter/hot/increment >/dev/null
    local used=$(($(worker_ns) - before))
    local n; n=$(curl -sf http://127.0.0.1:8291/counter/hot | sed 's/.*"value":\([0-9]*\).*/\1/')
    kill "$master"; wait "$master" 2>/dev/null || true; master=0
    echo $((used / n))
}

summary() { sort -g | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f [%.3f..%.3f]", m, v[1], v[NR]}'; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cur=(); base=()
for _ in $(seq "$ROUNDS"); do
    cur+=("$(one_round "$FORKLOCK")")
    base+=("$(one_round "$BASELINE")")
done
echo "ns of worker CPU per increment, median [min..max] of $ROUNDS rounds of ${SECS}s:"
echo "  $FORKLOCK: $(printf '%s\n' "${cur[@]}" | summary)"
echo "  $BASELINE: $(printf '%s\n' "${base[@]}" | summary)"
echo "  this/baseline: $(paste <(printf '%s\n' "${cur[@]}") <(printf '%s\n' "${base[@]}") | awk '{print $1 / $2}' | summary)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
