#!/usr/bin/env bash
# compare_http_strictness.sh: sends every request of tests/http_corpus/ (one raw request per file,
# the status forklock must answer first in its name) to forklock and to nginx, and prints a table:
# request, nginx's answer, forklock's answer (and, with BASELINE=path, another forklock binary's,
# e.g. one built without the request screen). The goal: forklock refuses every request nginx
# refuses. nginx runs from a temporary config on loopback, in front of a second nginx server that
# answers 200, so that it reads (and checks) request bodies as a proxy does; it is stopped at the
# end. Everything listens on free loopback ports.
#
#   bench/compare_http_strictness.sh [FORKLOCK_BIN]     (default build/server/forklock)
#   BASELINE=/path/to/old/forklock bench/compare_http_strictness.sh
#
# Exit status: 1 if nginx refuses a request that forklock accepts, else 0.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
forklock=${1:-$here/build/server/forklock}
corpus=$here/tests/http_corpus
work=$(mktemp -d /tmp/forklock-strictness.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_forklock BIN NAME: sets `port` once the server answers /healthz. (Not in a $(...)
# subshell: the pids must reach cleanup.)
start_forklock() {
    local dir=$work/$2
    port=$(free_port)
    mkdir -p "$dir"
    "$1" -b "127.0.0.1:$port" -w 1 --data-dir "$dir/data" >"$dir/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        python3 - "$port" <<'EOF' && return
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2)
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n"); sys.exit(0 if s.recv(12) else 1)
except OSError:
    sys.exit(1)
EOF
        sleep 0.1
    done
    echo "forklock ($1) did not start: $(cat "$dir/log")" >&2
    exit 2
}

# start_nginx: sets `port` to the front server's.
start_nginx() {
    local front back
    front=$(free_port)
    back=$(free_port)
    mkdir -p "$work/nginx"
    cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server { listen 127.0.0.1:$front; location / { proxy_pass http://127.0.0.1:$back; } }
    server { listen 127.0.0.1:$back; location / { return 200 "ok\n"; } }
}
EOF
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
    pids+=($!)
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $front), timeout=0.2)" \
            2>/dev/null && { port=$front; return; }
        sleep 0.1
    done
    echo "nginx did not start: $(cat "$work/nginx/error.log")" >&2
    exit 2
}

# answer PORT FILE: the status code of the first reply (or "-" for none, "?" for non-HTTP).
answer() {
    python3 - "$1" "$2" <<'EOF'
import re, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.2)
try:
    s.sendall(open(sys.argv[2], "rb").read())
except OSError:
    pass
got, end = b"", time.time() + 2
while time.time() < end and b"\r\n" not in got:
    try:
        b = s.recv(4096)
    except socket.timeout:
        continue
    except OSError:
        break
    if not b:
        break
    got += b
m = re.match(rb"HTTP/\d\.\d (\d{3}) ", got)
print(m.group(1).decode() if m else ("-" if not got else "?"))
EOF
}

refuses() { [[ $1 == 4* || $1 == 5* || $1 == - || $1 == "?" ]]; }

port=
start_forklock "$forklock" forklock
fk_port=$port
base_port=
if [[ -n ${BASELINE:-} ]]; then
    start_forklock "$BASELINE" baseline
    base_port=$port
fi
start_nginx
ng_port=$port

printf '%-36s %-6s %-9s %s\n' request nginx forklock "${BASELINE:+baseline}"
missed=0
for file in "$corpus"/*.txt; do
    name=$(basename "$file" .txt)
    ng=$(answer "$ng_port" "$file")
    fk=$(answer "$fk_port" "$file")
    base=
    if [[ -n $base_port ]]; then base=$(answer "$base_port" "$file"); fi
    mark=
    if refuses "$ng" && ! refuses "$fk"; then mark=" <- accepted by forklock only"; missed=$((missed + 1)); fi
    printf '%-36s %-6s %-9s %s%s\n' "$name" "$ng" "$fk" "$base" "$mark"
done
echo "requests nginx refuses and forklock accepts: $missed"
[[ $missed -eq 0 ]]
