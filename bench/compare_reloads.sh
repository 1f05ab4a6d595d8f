#!/usr/bin/env bash
# Reloads and binary upgrades under keep-alive load, forklock against nginx, in one run, on
# loopback only. Each server has 2 workers and answers GET with 200 (forklock /healthz, nginx
# `return 200`); wrk -t2 -c32 loads it while:
#   reload:  a HUP every 0.7 s, 10 times (nginx: `nginx -s reload`, which sends its master HUP);
#   upgrade: 3 times USR2, wait until the new master has its workers, WINCH, 0.7 s and until the
#            old master's workers are gone, QUIT the old master (nginx's own "upgrading
#            executable on the fly", with its binary).
# Printed: wrk's requests, its non-2xx answers and socket errors (connect, read, write, timeout),
# per server and scenario. wrk does not retry: a keep-alive connection that a stopping worker
# closes while wrk sends its next request is a read error for both servers (the race every
# HTTP/1.1 server has), not a request the server took and dropped.
# Needs: wrk, nginx (Debian packages), curl, a built build/. nginx runs daemonized in a temporary
# prefix (its USR2 and WINCH work only then).
# usage: [FORKLOCK=path/to/forklock] bench/compare_reloads.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FORKLOCK=$(realpath "${FORKLOCK:-build/server/forklock}")
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in wrk curl; do command -v "$tool" >/dev/null || { echo "missing $tool"; exit 2; }; done
[ -x "$NGINX" ] || { echo "missing nginx: apt-get install nginx-light"; exit 2; }
tmp=$(mktemp -d)
FL_PORT=18931; NG_PORT=18932

stop_all() {
    for f in "$tmp"/fl.pid "$tmp"/fl.pid.oldbin "$tmp"/nginx/nginx.pid "$tmp"/nginx/nginx.pid.oldbin; do
        [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    sleep 1; wait 2>/dev/null || true
}
trap 'stop_all; rm -rf "$tmp"' EXIT

wait_for() { for _ in $(seq 300); do eval "$1" && return 0; sleep 0.05; done; echo "timed out: $1" >&2; exit 1; }
children() { cat "/proc/$1/task/$1/children" 2>/dev/null | wc -w; }

start_forklock() {
    rm -rf "$tmp/fl-data"
    "$FORKLOCK" -b "127.0.0.1:$FL_PORT" -w 2 -p "$tmp/fl.pid" --data-dir "$tmp/fl-data" \
        >"$tmp/fl.log" 2>&1 &
    wait_for "curl -sf http://127.0.0.1:$FL_PORT/healthz >/dev/null"
}
start_nginx() {
    mkdir -p "$tmp/nginx/logs"
    cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 2; daemon on; pid $tmp/nginx/nginx.pid; error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$NG_PORT; location / { return 200 "ok\n"; } } }
CONF
    "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
    wait_for "curl -sf http://127.0.0.1:$NG_PORT/ >/dev/null"
}

reloads() { # server
    for _ in $(seq 10); do
        sleep 0.7
        if [ "$1" = forklock ]; then kill -HUP "$(cat "$tmp/fl.pid")"
        else "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -s reload 2>/dev/null; fi
    done
}
upgrades() { # server: pid file
    local pid_file=$1
    for _ in 1 2 3; do
        sleep 0.7
        local old; old=$(cat "$pid_file")
        kill -USR2 "$old"
        wait_for "[ -f $pid_file.oldbin ] && [ -f $pid_file ] && [ \"\$(cat $pid_file)\" != $old ]"
        local new; new=$(cat "$pid_file")
        wait_for "[ \$(children $new) -ge 2 ]"
        kill -WINCH "$old"
        sleep 0.7
        wait_for "[ \$(children $old) -le 1 ]" # its workers are gone; the new master is its child
        kill -QUIT "$old"
        wait_for "! kill -0 $old 2>/dev/null || grep -q '^Z' <(awk '{print \$3}' /proc/$old/stat 2>/dev/null)"
    done
}

measure() { # name, url, secs, then the command run during the load
    local name=$1 url=$2 secs=$3; shift 3
    wrk -t2 -c32 -d"${secs}s" "$url" >"$tmp/wrk.out" 2>&1 &
    local wrk_pid=$!
    "$@"
    wait "$wrk_pid"
    awk -v name="$name" '
        / requests in / {total = $1}
        /Socket errors/ {gsub(",", ""); errs = $4 + $6 + $8 + $10; detail = $3 " " $4 " " $5 " " $6 " " $7 " " $8 " " $9 " " $10}
        /Non-2xx/ {non2xx = $NF}
        END {printf "%-28s %9d requests  %6d non-2xx  %6d socket errors (%s)\n", name, total, non2xx, errs, detail ? detail : "none"}' \
        "$tmp/wrk.out"
}

start_forklock
start_nginx
echo "wrk -t2 -c32; forklock -w 2 (GET /healthz), nginx worker_processes 2 (return 200)"
measure "forklock, 10 HUPs" "http://127.0.0.1:$FL_PORT/healthz" 9 reloads forklock
measure "nginx, 10 reloads" "http://127.0.0.1:$NG_PORT/" 9 reloads nginx
measure "forklock, 3 upgrades" "http://127.0.0.1:$FL_PORT/healthz" 9 upgrades "$tmp/fl.pid"
measure "nginx, 3 upgrades" "http://127.0.0.1:$NG_PORT/" 9 upgrades "$tmp/nginx/nginx.pid"
measure "forklock, no signal" "http://127.0.0.1:$FL_PORT/healthz" 5 true
measure "nginx, no signal" "http://127.0.0.1:$NG_PORT/" 5 true
