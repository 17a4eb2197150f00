#!/usr/bin/env bash
# A throwaway redis-server on a loopback port, for tests and benchmarks.
#
#   scripts/redis-server.sh start [PORT]    install Debian's redis-server if missing, start one
#                                           on 127.0.0.1:PORT (default: a free port) in a new
#                                           temp dir, no persistence; prints "PORT PID DIR"
#   scripts/redis-server.sh stop PID [DIR]  stop it (TERM, KILL after 5 s); remove DIR
#
# Example (.ci/run):
#   read -r port pid dir < <(scripts/redis-server.sh start)
#   trap 'scripts/redis-server.sh stop "$pid" "$dir"' EXIT
#   export RAGFLEET_REDIS_URL="redis://127.0.0.1:$port/0"
set -euo pipefail

die() { echo "redis-server.sh: $*" >&2; exit 1; }

ensure_installed() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  command -v apt-get >/dev/null || die "redis-server is missing and apt-get is not available; install redis-server"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "redis-server.sh: installing Debian's redis-server" >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server; } >&2 \
    || die "could not install redis-server (needs root or passwordless sudo)"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# try_start PORT DIR: start a daemonised server; succeed once it answers PING.
try_start() {
  local port=$1 dir=$2
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2 || return 1
  for _ in $(seq 100); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ] && [ -s "$dir/redis.pid" ]; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

start() {
  ensure_installed
  local want=${1:-} dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/ragfleet-redis.XXXXXX")
  for _ in 1 2 3 4 5; do
    port=${want:-$(free_port)}
    if try_start "$port" "$dir"; then
      echo "$port $(cat "$dir/redis.pid") $dir"
      return 0
    fi
    [ -n "$want" ] && break
  done
  cat "$dir/redis.log" >&2 2>/dev/null || true
  rm -rf "$dir"
  die "redis-server did not start on 127.0.0.1:${port} (log above)"
}

# running PID: the process exists and is not a zombie (a daemon's parent may reap late).
running() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state:0:1}" != "Z" ]
}

stop() {
  local pid=${1:?usage: stop PID [DIR]} dir=${2:-}
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 100); do
      running "$pid" || break
      sleep 0.05
    done
    running "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  case "$dir" in
    */ragfleet-redis.*) rm -rf "$dir" ;;
    "") ;;
    *) die "refusing to remove $dir: not a directory made by this script" ;;
  esac
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) die "usage: $0 start [PORT] | stop PID [DIR]" ;;
esac
