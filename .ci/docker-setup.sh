#!/usr/bin/env bash
# Make a Docker engine and the kernel_bridge test images available, without a registry.
#
# Idempotent; safe to run before every test run (it is called by .ci/run and by the
# Docker tests' session fixture). What it does, skipping every step already done:
#   1. installs Debian's docker.io and debootstrap with apt-get when missing;
#   2. starts dockerd in the background when no engine answers (log: $KB_DOCKERD_LOG),
#      and waits (bounded) until it answers;
#   3. builds the test images with debootstrap + `docker import`, cached by tag:
#        kernel-bridge-test/minimal:bookworm  python3 only (debootstrap minbase)
#        kernel-bridge-test/rich:bookworm-3   + IPython, matplotlib, numpy, pip, and PyPI
#                                             wheels unpacked at build time: debugpy (the
#                                             visual debugger), ipywidgets 8, comm, tqdm
#      The Debian mirror is taken from the machine's apt sources (override: KB_DEBIAN_MIRROR).
#
# Environment: KB_DOCKERD_LOG (default /var/log/kernel-bridge-dockerd.log),
# KB_DOCKERD_WAIT (seconds, default 60), KB_DEBIAN_MIRROR, KB_DEBOOTSTRAP_CACHE
# (default /var/cache/kernel-bridge-debootstrap), KB_SKIP_RICH=1 (minimal image only),
# KB_BENCH_IMAGES=1 (also the benchmark's anchor image, kernel-bridge-bench/ipykernel:bookworm:
# Debian's python3-ipykernel, for an ipykernel running inside a container; the tests do
# not need it, bench/run.py builds it through this option when missing).
# With DOCKER_HOST set to a remote engine nothing is installed or started: the images
# are built locally and imported into that engine.
set -euo pipefail

MINIMAL_TAG="kernel-bridge-test/minimal:bookworm"
RICH_TAG="kernel-bridge-test/rich:bookworm-3"
BENCH_IPYKERNEL_TAG="kernel-bridge-bench/ipykernel:bookworm"
# PyPI wheels unpacked into the rich image (Debian bookworm has no python3-debugpy,
# and its python3-ipywidgets is 7.x); pinned, so the image is the same everywhere.
RICH_WHEELS=(debugpy==1.8.22 ipywidgets==8.1.8 comm==0.2.3 tqdm==4.67.1
    widgetsnbextension==4.0.15 jupyterlab_widgets==3.0.16)
SUITE="bookworm"
DOCKERD_LOG="${KB_DOCKERD_LOG:-/var/log/kernel-bridge-dockerd.log}"
DOCKERD_WAIT="${KB_DOCKERD_WAIT:-60}"
CACHE_DIR="${KB_DEBOOTSTRAP_CACHE:-/var/cache/kernel-bridge-debootstrap}"

log() { printf '[docker-setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && SUDO="sudo -n" || true
fi

apt_install() {
    # apt_install PKG...: install with apt-get, refreshing the package lists once if needed.
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@"; then
        log "apt-get install failed; refreshing package lists and retrying"
        $SUDO apt-get -o DPkg::Lock::Timeout=600 update
        $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@"
    fi
}

engine_answers() { timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# --- 1. packages ----------------------------------------------------------------------
need=()
command -v docker >/dev/null 2>&1 || need+=(docker.io)
if [ -z "${DOCKER_HOST:-}" ]; then
    command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
fi
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    log "installing ${need[*]}"
    apt_install "${need[@]}"
fi

# --- 2. engine ------------------------------------------------------------------------
if engine_answers; then
    log "Docker engine answers ($(docker version --format '{{.Server.Version}}'))"
elif [ -n "${DOCKER_HOST:-}" ]; then
    die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST; start it or unset DOCKER_HOST"
else
    log "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid + nohup: the daemon outlives this script and its process group.
    $SUDO setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    deadline=$((SECONDS + DOCKERD_WAIT))
    until engine_answers; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer within ${DOCKERD_WAIT}s (see $DOCKERD_LOG)"
        fi
        sleep 0.5
    done
    log "Docker engine up ($(docker version --format '{{.Server.Version}}'))"
fi

# --- 3. images ------------------------------------------------------------------------
debian_mirror() {
    # The first apt source serving the main suite (not -security/-updates) of Debian.
    if [ -n "${KB_DEBIAN_MIRROR:-}" ]; then echo "$KB_DEBIAN_MIRROR"; return; fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: a stanza with "Suites: ... bookworm ..." and a URIs line.
        uri=$(awk -v suite="$SUITE" '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; s=0; t=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u = a[1] }
                    if ($i ~ /^Types:/ && $i ~ /(^|[ \t])deb([ \t]|$)/) t = 1
                    if ($i ~ /^Suites:/) { n = split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == suite) s = 1 }
                }
                if (u != "" && s && t) { print u; exit }
            }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    echo "http://deb.debian.org/debian"
}

apt_package_exists() { apt-cache show "$1" >/dev/null 2>&1; }

add_wheels() {
    # add_wheels ROOTFS PKG...: unpack the PyPI wheels of PKG (no dependencies) for the
    # image's CPython 3.11 on x86_64 into ROOTFS's /usr/local/lib/python3.11/dist-packages,
    # which Debian's python3 has on sys.path. Binary wheels only: nothing is compiled.
    local rootfs="$1" wheels site
    shift
    [ "$#" -gt 0 ] || return 0
    wheels=$(mktemp -d /var/tmp/kb-wheels.XXXXXX)
    python3 -m pip download --quiet --no-deps --only-binary :all: --python-version 3.11 \
        --implementation cp --abi cp311 --platform manylinux2014_x86_64 \
        --dest "$wheels" "$@" || die "pip download failed for: $*"
    site="$rootfs/usr/local/lib/python3.11/dist-packages"
    $SUDO mkdir -p "$site"
    for wheel in "$wheels"/*.whl; do
        log "unpacking $(basename "$wheel") into the image"
        $SUDO python3 -m zipfile -e "$wheel" "$site" || die "cannot unpack $wheel"
    done
    $SUDO chmod -R a+rX "$site"
    rm -rf "$wheels"
}

build_image() {
    # build_image TAG INCLUDE_LIST [WHEEL...]: debootstrap a minbase rootfs, add the PyPI
    # wheels, and import it as TAG.
    local tag="$1" include="$2" dir start
    if docker image inspect "$tag" >/dev/null 2>&1; then
        log "image $tag present (cached)"
        return
    fi
    start=$SECONDS
    dir=$(mktemp -d /var/tmp/kb-rootfs.XXXXXX)
    # shellcheck disable=SC2064
    trap "$SUDO rm -rf '$dir'" EXIT
    mkdir -p "$CACHE_DIR"
    log "building $tag from $MIRROR (packages: $include)"
    $SUDO debootstrap --variant=minbase --cache-dir="$CACHE_DIR" --include="$include" \
        "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1 || {
        tail -n 30 "$dir.log" >&2
        die "debootstrap failed for $tag (log: $dir.log)"
    }
    add_wheels "$dir" "${@:3}"
    # Smaller image: no package lists, no .deb cache, no docs.
    $SUDO rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
    $SUDO tar --numeric-owner -C "$dir" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'WORKDIR /' \
        --change 'CMD ["python3"]' \
        --message "kernel_bridge test image (debootstrap $SUITE minbase + $include)" \
        - "$tag" >/dev/null
    $SUDO rm -rf "$dir" "$dir.log"
    trap - EXIT
    log "built $tag in $((SECONDS - start))s"
}

if docker image inspect "$MINIMAL_TAG" >/dev/null 2>&1 &&
    { [ "${KB_SKIP_RICH:-}" = 1 ] || docker image inspect "$RICH_TAG" >/dev/null 2>&1; } &&
    { [ "${KB_BENCH_IMAGES:-}" != 1 ] || docker image inspect "$BENCH_IPYKERNEL_TAG" >/dev/null 2>&1; }; then
    log "test images present (cached)"
    exit 0
fi

MIRROR=$(debian_mirror)
build_image "$MINIMAL_TAG" "python3"

if [ "${KB_SKIP_RICH:-}" != 1 ]; then
    rich="python3,python3-ipython,python3-matplotlib,python3-numpy,python3-pip"
    if apt_package_exists python3-matplotlib-inline; then
        rich="$rich,python3-matplotlib-inline"
    fi
    build_image "$RICH_TAG" "$rich" "${RICH_WHEELS[@]}"
fi
if [ "${KB_BENCH_IMAGES:-}" = 1 ]; then
    # debootstrap does not resolve virtual packages or alternatives: name the providers.
    build_image "$BENCH_IPYKERNEL_TAG" \
        "python3,python3-ipykernel,python3-cffi-backend,libboost-regex1.74.0"
fi
log "done"
