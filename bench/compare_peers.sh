#!/usr/bin/env bash
# Side-by-side figures against the peers, in one run, on loopback only:
#   1. GET /healthz on forklock -w 2   vs  nginx `return 200` (2 workers)  vs  gunicorn -w 2 (sync),
#      wrk -t2 -c32
#   2. POST /counter/hot/increment on forklock -w 4 --preload (default mode)  vs  the same server's
#      GET /healthz  vs  gunicorn -w 4 --preload with multiprocessing.Lock
#      (../shared/peers/counter_app.py), wrk -t1 -c16
#   3. lost updates: ab -n N -c 16 increments against both, then the final values
# Each wrk figure is the median of RUNS runs (the peers take turns within a run), with the spread
# min..max; a ratio is the median of the per-run ratios.
# Needs: wrk, ab (apache2-utils), nginx-light, gunicorn (Debian packages), a built build/.
# BASELINE=path/to/another/forklock adds that binary to sections 1 and 2, measured in turn with the
# others (e.g. one built from before a change), with its ratio to nginx and forklock/baseline.
# usage: [FORKLOCK=path/to/forklock] [BASELINE=path] [RUNS=5] [SECTIONS=123] bench/compare_peers.sh [seconds per wrk run] [increments]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3}; N=${2:-5000}; RUNS=${RUNS:-5}; SECTIONS=${SECTIONS:-123} # e.g. SECTIONS=2: increments only
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
rps_wrk() { # url, then wrk flags
    local url=$1; shift
    wrk "$@" -d"${SECS}s" "$url" | awk '/Requests\/sec/ {print $2}'
}

start_forklock() { # port, then flags (BIN= another binary)
    local port=$1; shift
    "${BIN:-$FORKLOCK}" -b "127.0.0.1:$port" --data-dir "$tmp/fl-$port" --log-level warning "$@" 2>"$tmp/fl-$port.log" &
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

# median [min..max] of numbers, one a line on stdin, printed with format $1
summary() { sort -g | awk -v f="$1" '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f, m, v[1], v[NR]}'; }
stats() { printf '%s\n' "$@" | summary "%10.0f  [%.0f..%.0f]"; }
# the ratios a[i] / b[i] of two lists given as "a1 a2 ..." "b1 b2 ...": median [min..max]
ratio() { paste <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") | awk '{print $1 / $2}' | summary "%.2f [%.2f..%.2f]"; }
row() { printf '%-44s %s\n' "$1" "$(stats $2)"; }
echo "forklock: $FORKLOCK; $RUNS runs of ${SECS}s each; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'wrk.method = "POST"\n' >"$tmp/post.lua"

if [[ $SECTIONS == *1* ]]; then
echo "== 1. trivial endpoint: wrk -t2 -c32 (req/s, median [min..max])"
start_forklock 8201 -w 2; start_nginx 8202; start_gunicorn 8203 none -w 2
[ -n "${BASELINE:-}" ] && BIN=$BASELINE start_forklock 8204 -w 2
fl=(); ng=(); gu=(); bl=()
for _ in $(seq "$RUNS"); do
    fl+=("$(rps_wrk http://127.0.0.1:8201/healthz -t2 -c32)")
    ng+=("$(rps_wrk http://127.0.0.1:8202/ -t2 -c32)")
    gu+=("$(rps_wrk http://127.0.0.1:8203/ -t2 -c32)")
    [ -n "${BASELINE:-}" ] && bl+=("$(rps_wrk http://127.0.0.1:8204/healthz -t2 -c32)")
done
row "forklock -w 2 GET /healthz" "${fl[*]}"; row "nginx return 200 (2 workers)" "${ng[*]}"; row "gunicorn -w 2 GET /" "${gu[*]}"
[ -n "${BASELINE:-}" ] && row "baseline forklock -w 2 GET /healthz" "${bl[*]}"
echo "forklock/nginx = $(ratio "${fl[*]}" "${ng[*]}")   forklock/gunicorn = $(ratio "${fl[*]}" "${gu[*]}")"
[ -n "${BASELINE:-}" ] && echo "baseline/nginx = $(ratio "${bl[*]}" "${ng[*]}")   forklock/baseline = $(ratio "${fl[*]}" "${bl[*]}")"

fi
[[ $SECTIONS == *[23]* ]] && { start_forklock 8211 -w 4 --preload; start_gunicorn 8212 process -w 4 --preload; }
[[ $SECTIONS == *2* && -n "${BASELINE:-}" ]] && BIN=$BASELINE start_forklock 8213 -w 4 --preload
if [[ $SECTIONS == *2* ]]; then
echo "== 2. locked read-modify-write of one hot counter: wrk -t1 -c16 (req/s, median [min..max])"
inc=(); hz=(); gu=(); binc=()
for _ in $(seq "$RUNS"); do
    inc+=("$(rps_wrk http://127.0.0.1:8211/counter/hot/increment -t1 -c16 -s "$tmp/post.lua")")
    [ -n "${BASELINE:-}" ] && binc+=("$(rps_wrk http://127.0.0.1:8213/counter/hot/increment -t1 -c16 -s "$tmp/post.lua")")
    hz+=("$(rps_wrk http://127.0.0.1:8211/healthz -t1 -c16)")
    gu+=("$(rps_wrk http://127.0.0.1:8212/incr/hot -t1 -c16)")
done
row "forklock -w 4 --preload POST increment" "${inc[*]}"; row "forklock -w 4 --preload GET /healthz" "${hz[*]}"
row "gunicorn -w 4 --preload mp.Lock /incr" "${gu[*]}"
echo "forklock/gunicorn = $(ratio "${inc[*]}" "${gu[*]}")x   increment//healthz = $(ratio "${inc[*]}" "${hz[*]}")"
if [ -n "${BASELINE:-}" ]; then
    row "baseline -w 4 --preload POST increment" "${binc[*]}"
    echo "increment forklock/baseline = $(ratio "${inc[*]}" "${binc[*]}")"
fi

fi
if [[ $SECTIONS == *3* ]]; then
echo "== 3. lost updates: ab -n $N -c 16 increments of a fresh key"
ab -q -n "$N" -c 16 -m POST http://127.0.0.1:8211/counter/fresh/increment >/dev/null 2>&1
ab -q -n "$N" -c 16 http://127.0.0.1:8212/incr/fresh >/dev/null 2>&1
flv=$(curl -s http://127.0.0.1:8211/counter/fresh | sed 's/.*"value":\([0-9]*\).*/\1/'); guv=$(curl -s http://127.0.0.1:8212/get/fresh)
printf '%-44s lost %s\n' "forklock -w 4 --preload (default mode)" "$((N - flv))" "gunicorn -w 4 --preload mp.Lock" "$((N - guv))"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
