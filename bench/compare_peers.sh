#!/usr/bin/env bash
# Side-by-side figures against the peers, in one run, on loopback only:
#   1. GET /healthz on forklock -w 2   vs  nginx `return 200` (2 workers)  vs  gunicorn -w 2 (sync)
#   2. POST /counter/k/increment on forklock -w 4 --preload (default mode)
#      vs  gunicorn -w 4 --preload with multiprocessing.Lock (../shared/peers/counter_app.py)
# Needs: wrk, ab (apache2-utils), nginx-light, gunicorn (Debian packages), a built build/.
# usage: [FORKLOCK=path/to/forklock] bench/compare_peers.sh [seconds per wrk run] [increments]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}; N=${2:-5000}
PEERS=${PEERS:-../shared/peers}
FORKLOCK=${FORKLOCK:-build/server/forklock} # another build to compare, e.g. one from before a change
[ -f "$PEERS/counter_app.py" ] || { echo "no $PEERS/counter_app.py (set PEERS=)"; exit 2; }
for tool in wrk ab nginx gunicorn curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install wrk apache2-utils nginx-light gunicorn curl"; exit 2; }
done
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }
rps_wrk() { wrk -t2 -c32 -d"${SECS}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
rps_ab() { ab -q -n "$N" -c 16 $2 "$1" 2>/dev/null | awk '/Requests per second/ {print $4}'; }

start_forklock() { # port, then flags
    local port=$1; shift
    "$FORKLOCK" -b "127.0.0.1:$port" --data-dir "$tmp/fl-$port" --log-level warning "$@" 2>"$tmp/fl-$port.log" &
    pids+=($!); wait_up "http://127.0.0.1:$port/healthz"
}
start_gunicorn() { # port, lock, then flags
    local port=$1 lock=$2; shift 2
    LOCK=$lock DATA_DIR="$tmp/gu-$port" gunicorn -b "127.0.0.1:$port" --chdir "$PEERS" "$@" counter_app:app 2>"$tmp/gu-$port.log" &
    pids+=($!); wait_up "http://127.0.0.1:$port/"
}
start_nginx() {
    mkdir -p "$tmp/nginx"
    cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 2; daemon off; pid $tmp/nginx/nginx.pid; error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$1; location / { return 200 "ok\n"; } } }
CONF
    nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>/dev/null &
    pids+=($!); wait_up "http://127.0.0.1:$1/"
}

echo "== 1. trivial endpoint: wrk -t2 -c32 -d${SECS}s (req/s)"
start_forklock 8201 -w 2; start_nginx 8202; start_gunicorn 8203 none -w 2
fl=$(rps_wrk http://127.0.0.1:8201/healthz); ng=$(rps_wrk http://127.0.0.1:8202/); gu=$(rps_wrk http://127.0.0.1:8203/)
printf '%-36s %10s\n' "forklock -w 2 GET /healthz" "$fl" "nginx return 200 (2 workers)" "$ng" "gunicorn -w 2 GET /" "$gu"
awk -v f="$fl" -v n="$ng" -v g="$gu" 'BEGIN {printf "forklock/nginx = %.2f   forklock/gunicorn = %.1fx\n", f/n, f/g}'

echo "== 2. locked read-modify-write of one hot counter: ab -n $N -c 16 (req/s, lost updates)"
start_forklock 8211 -w 4 --preload; start_gunicorn 8212 process -w 4 --preload
fl=$(rps_ab http://127.0.0.1:8211/counter/k/increment "-m POST"); gu=$(rps_ab http://127.0.0.1:8212/incr/k "")
flv=$(curl -s http://127.0.0.1:8211/counter/k | sed 's/.*"value":\([0-9]*\).*/\1/'); guv=$(curl -s http://127.0.0.1:8212/get/k)
printf '%-36s %10s  lost %s\n' "forklock -w 4 --preload (mutex)" "$fl" "$((N - flv))" "gunicorn -w 4 --preload mp.Lock" "$gu" "$((N - guv))"
awk -v f="$fl" -v g="$gu" 'BEGIN {printf "forklock/gunicorn = %.1fx\n", f/g}'
