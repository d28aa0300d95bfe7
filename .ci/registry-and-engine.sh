#!/usr/bin/env bash
# Test services for the "Docker as users run it" tests: a Docker registry and a second
# Docker engine reached over TCP with TLS, both on loopback only.
#
# Called by the pytest session fixtures in tests/_support/services.py (which pick the
# ports and directories and stop everything at the end of the session); usable by hand.
# Every subcommand is idempotent: what is already there is reused.
#
#   packages                 apt-get install docker-registry, apache2-utils (htpasswd),
#                            openssl when missing (and docker.io, via docker-setup.sh)
#   certs DIR                a CA, a server certificate for 127.0.0.1/localhost and a client
#                            certificate in DIR (ca.pem, server-*.pem, cert.pem, key.pem:
#                            the names DOCKER_CERT_PATH expects)
#   registry DIR PORT [USER] a registry on 127.0.0.1:PORT storing in DIR/data, config in
#                            DIR/config.yml, log in DIR/registry.log, pid in DIR/pid; with
#                            USER, basic auth (bcrypt htpasswd) whose password is read from
#                            stdin, never from the command line
#   engine DIR PORT CERTS    a dockerd on tcp://127.0.0.1:PORT (TLS, client certificates
#                            from CERTS required) with its own data root, exec root, pid
#                            file, unix socket DIR/docker.sock, its own bridge interface
#                            kbtestPORT (198.18.N.1/24) and no iptables rules, log
#                            DIR/dockerd.log
#   stop DIR                 stop the process whose pid is in DIR/pid (TERM, then KILL),
#                            and delete the bridge interface named in DIR/bridge
#
# Never `dockerd --bridge none` next to the machine's engine: at start it deletes the
# host's docker0 interface, which the main engine's default network needs.
#
# Environment: KB_SERVICE_WAIT (seconds to wait for a service to answer, default 60).
set -euo pipefail

WAIT="${KB_SERVICE_WAIT:-60}"
log() { printf '[registry-and-engine %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && SUDO="sudo -n" || true
fi

alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

wait_until() {
    # wait_until WHAT LOGFILE COMMAND...: poll COMMAND until it succeeds (bounded).
    local what="$1" logfile="$2"
    shift 2
    local deadline=$((SECONDS + WAIT))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$logfile" >&2 || true
            die "$what did not answer within ${WAIT}s (log: $logfile)"
        fi
        sleep 0.2
    done
}

cmd_packages() {
    local need=()
    command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
    command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    command -v curl >/dev/null 2>&1 || need+=(curl)
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    if [ "${#need[@]}" -gt 0 ]; then
        log "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}"; then
            $SUDO apt-get -o DPkg::Lock::Timeout=600 update
            $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}"
        fi
    fi
    # The package's init script may have started a registry on :5000; the tests run
    # their own, so one started by the package is left alone (it does not matter).
}

cmd_certs() {
    local dir="$1"
    mkdir -p "$dir"
    if [ -s "$dir/ca.pem" ] && [ -s "$dir/cert.pem" ] && [ -s "$dir/server-cert.pem" ]; then
        return
    fi
    log "making TLS certificates in $dir"
    (
        cd "$dir"
        umask 077
        openssl genrsa -out ca-key.pem 2048 2>/dev/null
        openssl req -x509 -new -key ca-key.pem -sha256 -days 3 -subj "/CN=kernel-bridge test CA" \
            -out ca.pem
        openssl genrsa -out server-key.pem 2048 2>/dev/null
        openssl req -new -key server-key.pem -subj "/CN=localhost" -out server.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' \
            >server-ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3 \
            -sha256 -extfile server-ext.cnf -out server-cert.pem 2>/dev/null
        openssl genrsa -out key.pem 2048 2>/dev/null
        openssl req -new -key key.pem -subj "/CN=kernel-bridge test client" -out client.csr
        printf 'extendedKeyUsage=clientAuth\n' >client-ext.cnf
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3 \
            -sha256 -extfile client-ext.cnf -out cert.pem 2>/dev/null
        rm -f server.csr client.csr server-ext.cnf client-ext.cnf ca.srl
        chmod 0444 ca.pem cert.pem server-cert.pem
    )
}

cmd_registry() {
    local dir="$1" port="$2" user="${3:-}"
    mkdir -p "$dir/data"
    if alive "$dir" && curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then
        log "registry on 127.0.0.1:$port already running"
        return
    fi
    local auth=""
    if [ -n "$user" ]; then
        # bcrypt (-B) as the registry requires; the password comes on stdin (-i).
        htpasswd -iBc "$dir/htpasswd" "$user" 2>/dev/null
        auth=$(printf 'auth:\n  htpasswd:\n    realm: kernel-bridge-test\n    path: %s\n' \
            "$dir/htpasswd")
    fi
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth
EOF
    log "starting a registry on 127.0.0.1:$port (${user:+basic auth, }log: $dir/registry.log)"
    setsid docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    # /v2/ answers 200 without auth and 401 with it: either means it serves.
    wait_until "the registry on 127.0.0.1:$port" "$dir/registry.log" \
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/"
}

cmd_engine() {
    local dir="$1" port="$2" certs="$3"
    mkdir -p "$dir/data" "$dir/exec"
    local engine=(docker -H "unix://$dir/docker.sock")
    if alive "$dir" && "${engine[@]}" version >/dev/null 2>&1; then
        log "engine on 127.0.0.1:$port already running"
        return
    fi
    # Its own bridge (the default one, docker0, belongs to the main engine), in the
    # benchmarking range 198.18.0.0/15, which real networks do not use.
    local bridge="kbtest$port"
    if ! ip link show "$bridge" >/dev/null 2>&1; then
        $SUDO ip link add "$bridge" type bridge
        $SUDO ip addr add "198.18.$((port % 250)).1/24" dev "$bridge"
        $SUDO ip link set "$bridge" up
    fi
    echo "$bridge" >"$dir/bridge"
    log "starting a second dockerd on tcp://127.0.0.1:$port with TLS (log: $dir/dockerd.log)"
    # Own data root, exec root (so its own containerd), pid file, socket and bridge; no
    # iptables rules: it cannot disturb the machine's main engine.
    $SUDO setsid dockerd \
        --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        -H "unix://$dir/docker.sock" -H "tcp://127.0.0.1:$port" \
        --tlsverify --tlscacert "$certs/ca.pem" --tlscert "$certs/server-cert.pem" \
        --tlskey "$certs/server-key.pem" \
        --bridge "$bridge" --iptables=false --ip-masq=false --ip-forward=false \
        --containerd-namespace kbtest-remote --containerd-plugins-namespace kbtest-remote-plugins \
        >>"$dir/dockerd.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    wait_until "the dockerd on 127.0.0.1:$port" "$dir/dockerd.log" "${engine[@]}" version
}

remove_bridge() {
    local dir="$1" bridge
    [ -f "$dir/bridge" ] || return 0
    bridge=$(cat "$dir/bridge")
    if ip link show "$bridge" >/dev/null 2>&1; then
        $SUDO ip link del "$bridge" || log "could not delete the bridge $bridge"
    fi
    rm -f "$dir/bridge"
}

cmd_stop() {
    local dir="$1" pid
    alive "$dir" || { rm -f "$dir/pid"; remove_bridge "$dir"; return 0; }
    pid=$(cat "$dir/pid")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "process $pid did not stop within 30s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$dir/pid"
    remove_bridge "$dir"
}

case "${1:-}" in
packages) cmd_packages ;;
certs) cmd_certs "$2" ;;
registry) cmd_registry "$2" "$3" "${4:-}" ;;
engine) cmd_engine "$2" "$3" "$4" ;;
stop) cmd_stop "$2" ;;
*) die "usage: $0 packages | certs DIR | registry DIR PORT [USER] | engine DIR PORT CERTS | stop DIR" ;;
esac
