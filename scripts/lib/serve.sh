# Shared by the benchmark scripts (sourced): start slotel pinned to CPU 0 on ephemeral
# ports with its data in a scratch directory, read its addresses, report its memory.

# start_slotel BIN DIR ARGS...: `BIN serve ARGS...` on CPU 0 with DIR/data (emptied
# first); sets $pid and returns once DIR/listen.json names its addresses.
start_slotel() {
  local bin=$1 dir=$2
  shift 2
  rm -rf "$dir/data" "$dir/listen.json"
  taskset -c 0 "$bin" serve "$@" \
    --otlp-grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 --api-addr 127.0.0.1:0 \
    --data-dir "$dir/data" --listen-file "$dir/listen.json" >/dev/null 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$dir/listen.json" ] && return; sleep 0.1; done
  echo "slotel did not start; its log: $dir/log" >&2
  return 1
}

# listen_addr DIR NAME: the address slotel listens on for NAME (otlp_grpc, otlp_http, api).
listen_addr() {
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1/listen.json" "$2"
}

# rss: slotel's resident memory now and at its peak.
rss() {
  echo "$(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status"), peak $(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")"
}

# stop_slotel: stops the slotel started last, if it runs.
stop_slotel() {
  if [ -n "${pid:-}" ]; then
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    pid=
  fi
  return 0
}
