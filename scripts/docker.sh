# Sourced by scripts/test: a Docker engine for the docker executor's tests,
# and the small image they run in, made here from Debian's busybox-static
# (no registry is reached: `docker import` of a local root filesystem).
#
# When an engine answers already, it is used as it is. Otherwise, as root,
# Debian's docker.io is installed if missing and dockerd started for the
# run (and stopped by gantry_docker_stop). On success GANTRY_DOCKER_IMAGE
# names the image; without it the docker tests say they did not run and why.
GANTRY_DOCKER_TEST_IMAGE=gantry-test/busybox:1
gantry_dockerd_pid=

gantry_docker_start() {
  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      echo "==> docker executor tests not run: no Docker engine, and not root to start one" >&2
      return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v busybox >/dev/null 2>&1; then
      echo "==> installing docker.io and busybox-static (Debian)" >&2
      if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null; }; then
        echo "==> docker executor tests not run: docker.io could not be installed" >&2
        return 0
      fi
    fi
    dockerd >"${TMPDIR:-/tmp}/gantry-dockerd.log" 2>&1 &
    gantry_dockerd_pid=$!
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
      echo "==> docker executor tests not run: dockerd did not start ($(tail -n 1 "${TMPDIR:-/tmp}/gantry-dockerd.log"))" >&2
      gantry_docker_stop
      return 0
    fi
  fi
  gantry_docker_image
  if docker image inspect "$GANTRY_DOCKER_TEST_IMAGE" >/dev/null 2>&1; then
    export GANTRY_DOCKER_IMAGE="$GANTRY_DOCKER_TEST_IMAGE"
    echo "==> docker executor tests run in $GANTRY_DOCKER_IMAGE" >&2
  else
    echo "==> docker executor tests not run: the test image could not be made" >&2
  fi
}

# The test image in the engine DOCKER_HOST names (made when missing).
gantry_docker_image() {
  if ! docker image inspect "$GANTRY_DOCKER_TEST_IMAGE" >/dev/null 2>&1; then
    if ! command -v busybox >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null 2>&1 || true
    fi
    local root
    root="$(mktemp -d)"
    mkdir -p "$root/bin" "$root/tmp" "$root/root"
    cp "$(command -v busybox)" "$root/bin/busybox" || true
    for applet in $(busybox --list 2>/dev/null); do
      [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'ENV HOME=/root' - "$GANTRY_DOCKER_TEST_IMAGE" >/dev/null || true
    rm -rf "$root"
  fi
  docker image inspect "$GANTRY_DOCKER_TEST_IMAGE" >/dev/null 2>&1
}

gantry_docker_stop() {
  if [ -n "$gantry_dockerd_pid" ]; then
    kill "$gantry_dockerd_pid" 2>/dev/null || true
    wait "$gantry_dockerd_pid" 2>/dev/null || true
    gantry_dockerd_pid=
  fi
}

# The layer cache's test: a Docker engine whose BuildKit can export a
# registry cache, buildx, and a registry on loopback. Debian bookworm's
# docker.io (20.10) cannot export one (it needs the containerd image
# store, Docker 24+), and no BuildKit image can be pulled here (no
# registry is reached), so this engine is trixie's: Debian's docker.io
# 26, containerd 1.7 and docker-buildx 0.13, unpacked (not installed)
# under $GANTRY_BUILDX_ROOT and started on its own socket beside the one
# above, with the containerd image store. The registry is Debian's
# docker-registry. On success GANTRY_BUILDX_DOCKER_HOST,
# GANTRY_BUILDX_REGISTRY, GANTRY_BUILDX_REGISTRY_LOG (which a failed
# build's message ends with) and GANTRY_BUILDX_IMAGE (the test image, in
# that engine) are set; without them the test says why it did not run. Needs
# root and gantry_docker_start's runc (docker.io's).
GANTRY_BUILDX_ROOT="${GANTRY_BUILDX_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry-buildx}"
GANTRY_TRIXIE="https://deb.debian.org/debian/pool/main"
GANTRY_TRIXIE_DEBS=(
  "d/docker.io/docker.io_26.1.5+dfsg1-9+deb13u1+b1_amd64.deb"
  "d/docker-buildx/docker-buildx_0.13.1+ds1-3_amd64.deb"
  "c/containerd/containerd_1.7.24~ds1-6+deb13u1_amd64.deb"
)
gantry_buildx_pids=()
gantry_buildx_run=

gantry_buildx_start() {
  local why="" root="$GANTRY_BUILDX_ROOT" run
  if [ "$(id -u)" != 0 ]; then
    why="not root"
  elif [ "$(dpkg --print-architecture 2>/dev/null)" != amd64 ]; then
    why="the engine's packages here are amd64"
  elif ! command -v runc >/dev/null 2>&1; then
    why="no runc (docker.io was not installed)"
  fi
  if [ -z "$why" ] && ! command -v docker-registry >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null 2>&1 \
      || why="docker-registry could not be installed"
  fi
  if [ -z "$why" ]; then
    mkdir -p "$root/debs" "$root/x"
    for deb in "${GANTRY_TRIXIE_DEBS[@]}"; do
      local file="$root/debs/${deb##*/}"
      if [ ! -s "$file" ]; then
        curl -fsSL --retry 3 -o "$file.part" "$GANTRY_TRIXIE/$deb" && mv "$file.part" "$file" \
          || { why="could not download ${deb##*/}"; break; }
      fi
      dpkg -x "$file" "$root/x" || { why="could not unpack ${deb##*/}"; break; }
    done
  fi
  if [ -z "$why" ]; then
    # The client finds buildx among its system plugin directories.
    mkdir -p /usr/local/lib/docker/cli-plugins
    cp "$root/x/usr/libexec/docker/cli-plugins/docker-buildx" /usr/local/lib/docker/cli-plugins/
    run="$(mktemp -d "${TMPDIR:-/tmp}/gantry-buildx.XXXXXX")"
    gantry_buildx_run="$run"
    printf '{"features":{"containerd-snapshotter":true}}\n' > "$run/daemon.json"
    # Its own bridge: docker0 is the other engine's, and an engine started
    # with --bridge=none deletes docker0. No iptables rules: its builds
    # reach nothing outside this machine (the test's RUN steps use
    # --network=none).
    if ! ip link show gantrybx0 >/dev/null 2>&1; then
      ip link add gantrybx0 type bridge \
        && ip addr add 172.31.254.1/24 dev gantrybx0 \
        && ip link set gantrybx0 up \
        || why="could not make its bridge gantrybx0"
    fi
  fi
  if [ -z "$why" ]; then
    PATH="$root/x/usr/bin:$PATH" "$root/x/usr/sbin/dockerd" --config-file "$run/daemon.json" \
      -H "unix://$run/docker.sock" --data-root "$run/data" --exec-root "$run/exec" \
      --pidfile "$run/docker.pid" --bridge=gantrybx0 --iptables=false >"$run/dockerd.log" 2>&1 &
    gantry_buildx_pids+=($!)
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
      "$run/registry" "$port" > "$run/registry.yml"
    docker-registry serve "$run/registry.yml" >"$run/registry.log" 2>&1 &
    gantry_buildx_pids+=($!)
    for _ in $(seq 1 60); do
      DOCKER_HOST="unix://$run/docker.sock" docker info >/dev/null 2>&1 \
        && curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
      sleep 0.5
    done
    if ! DOCKER_HOST="unix://$run/docker.sock" docker info >/dev/null 2>&1; then
      why="dockerd 26 did not start ($(tail -n 1 "$run/dockerd.log"))"
    elif ! curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
      why="the registry did not start ($(tail -n 1 "$run/registry.log"))"
    elif ! DOCKER_HOST="unix://$run/docker.sock" gantry_docker_image; then
      why="the test image could not be made in it"
    fi
  fi
  if [ -n "$why" ]; then
    echo "==> layer cache test not run: $why" >&2
    gantry_buildx_stop
    return 0
  fi
  export GANTRY_BUILDX_DOCKER_HOST="unix://$run/docker.sock"
  export GANTRY_BUILDX_REGISTRY="127.0.0.1:$port"
  export GANTRY_BUILDX_REGISTRY_LOG="$run/registry.log"
  export GANTRY_BUILDX_IMAGE="$GANTRY_DOCKER_TEST_IMAGE"
  echo "==> layer cache test runs against Docker 26 (containerd image store) and a registry at $GANTRY_BUILDX_REGISTRY" >&2
}

gantry_buildx_stop() {
  local pid
  for pid in "${gantry_buildx_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  gantry_buildx_pids=()
  if [ -n "$gantry_buildx_run" ]; then
    # dockerd bind-mounts its data root onto itself; a daemon that did not
    # shut down cleanly leaves the mount behind.
    umount "$gantry_buildx_run/data" 2>/dev/null || true
    rm -rf "$gantry_buildx_run" 2>/dev/null || true
    gantry_buildx_run=
  fi
}
