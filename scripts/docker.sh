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
  if docker image inspect "$GANTRY_DOCKER_TEST_IMAGE" >/dev/null 2>&1; then
    export GANTRY_DOCKER_IMAGE="$GANTRY_DOCKER_TEST_IMAGE"
    echo "==> docker executor tests run in $GANTRY_DOCKER_IMAGE" >&2
  else
    echo "==> docker executor tests not run: the test image could not be made" >&2
  fi
}

gantry_docker_stop() {
  if [ -n "$gantry_dockerd_pid" ]; then
    kill "$gantry_dockerd_pid" 2>/dev/null || true
    wait "$gantry_dockerd_pid" 2>/dev/null || true
    gantry_dockerd_pid=
  fi
}
