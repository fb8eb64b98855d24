# Sourced by scripts/test: headless Chromium for the browser tests
# (gantry_e2e::browser, a small DevTools client), from Debian's packages.
#
# When `chromium` is on PATH it is used as it is. Otherwise, as root,
# Debian's chromium is installed (apt-get update once per run). On success
# GANTRY_CHROMIUM names the binary; without it the browser tests say they
# did not run and why.
gantry_apt_updated=

gantry_chromium_install() {
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      echo "==> browser tests not run: no chromium, and not root to install it" >&2
      return 0
    fi
    echo "==> installing chromium (Debian)" >&2
    if [ -z "$gantry_apt_updated" ]; then
      apt-get update -qq && gantry_apt_updated=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
      echo "==> browser tests not run: chromium could not be installed" >&2
      return 0
    fi
  fi
  if [ -x /usr/bin/chromium ]; then
    export GANTRY_CHROMIUM=/usr/bin/chromium
  elif command -v chromium >/dev/null 2>&1; then
    GANTRY_CHROMIUM="$(command -v chromium)"
    export GANTRY_CHROMIUM
  else
    echo "==> browser tests not run: chromium is not on PATH after its install" >&2
    return 0
  fi
  echo "==> browser tests run in $("$GANTRY_CHROMIUM" --version 2>/dev/null || echo "$GANTRY_CHROMIUM")" >&2
}
