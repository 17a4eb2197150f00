#!/usr/bin/env bash
# The real services the test suite uses, from Debian's packages.
#
#   scripts/test-services.sh install   install redis-server, chromium and chromium-driver when
#                                      missing (as root or with passwordless sudo); otherwise
#                                      say which packages to install and carry on (the tests
#                                      that need them skip, or fail where RAGFLEET_REQUIRE_* is set)
set -euo pipefail

install() {
  local need=()
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  [ ${#need[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      echo "test-services.sh: missing ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test-services.sh: missing ${need[*]} and no apt-get here; install them by hand" >&2
    return 0
  fi
  echo "test-services.sh: installing Debian's ${need[*]}" >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"; } >/dev/null \
    || { echo "test-services.sh: apt-get install ${need[*]} failed" >&2; return 1; }
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: scripts/test-services.sh install" >&2; exit 2 ;;
esac
