#!/usr/bin/env bash
# Fencing's cost on hot-key increments: pairs of wrk runs against two servers of one binary,
# semaphore mode -w 4 --preload, one of them with --fencing (EXTRA= adds flags to it, e.g.
# EXTRA="--lock-lease-ms 1000"), taking turns (the order alternates); wrk -t1 -c16 POST
# /counter/hot/increment on loopback. Prints each pair and the median of the per-pair ratios.
# usage: [BIN=path/to/forklock] [PAIRS=15] bench/compare_fencing.sh [seconds per wrk run]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/server/forklock}; SECS=${1:-2}; PAIRS=${PAIRS:-15}
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
printf 'wrk.method = "POST"\n' >"$tmp/post.lua"
start() { local port=$1; shift
  "$BIN" -b "127.0.0.1:$port" --data-dir "$tmp/d-$port" --log-level warning --lock-mode semaphore --preload -w 4 "$@" 2>"$tmp/$port.log" &
  pids+=($!); for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0; sleep 0.1; done; echo "not up $port"; exit 1; }
start 8321
start 8322 --fencing ${EXTRA:-}
rps() { wrk -t1 -c16 -d"${SECS}s" -s "$tmp/post.lua" "http://127.0.0.1:$1/counter/hot/increment" | awk '/Requests\/sec/ {print $2}'; }
ratios=()
for i in $(seq "$PAIRS"); do
  if (( i % 2 )); then a=$(rps 8321); b=$(rps 8322); else b=$(rps 8322); a=$(rps 8321); fi
  r=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
  ratios+=("$r"); echo "pair $i: plain $a  fencing $b  ratio $r"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END {print "median fencing/plain ratio:", v[int((NR+1)/2)], "min", v[1], "max", v[NR]}'
