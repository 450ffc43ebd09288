#!/usr/bin/env bash
# Instructions tenet-mio executes per message, counted by valgrind's callgrind:
# unlike throughput on a shared machine, the count repeats to within a fraction
# of a percent, so it measures what permissions cost (bench-plain.conf against
# bench-perms.conf) and what an optimisation saves.
#
#   tests/bench/instructions.sh [--n 200000] [--configs "plain perms"] [--tests "pub pubsub fanout"]
#   tests/bench/instructions.sh --js [--n 50000]
#
# For each configuration one tenet-mio runs under callgrind; for each test and
# size (16 and 128 bytes) the counters are zeroed, nats-bench-harness (the
# official nats.go bench package, built by ../shared/bench/build_tools.sh) runs
# n messages, and the counters are dumped. Per message means per message
# delivered (per message published for publish-only).
#
# --js: JetStream instead, on the configurations compare.sh uses for its
# JetStream cells (plain, and an account whose permissions allow only its
# subjects and the JetStream API), with nats-jsbench: asynchronous publish,
# pull and push (each stores n messages, then consumes them), memory and
# file, 16 bytes. Per message means per message stored (and consumed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED=${TENET_SHARED:-$ROOT/../shared}
CONFIGS=$SHARED/bench/configs
N=200000
CONFS="plain perms"
TESTS="pub pubsub fanout"
FANOUT=5
PORT=14231
JS=0
while (($#)); do
  case $1 in
    --js) JS=1; N=50000; shift;;
    --n) N=$2; shift 2;;
    --configs) CONFS=$2; shift 2;;
    --tests) TESTS=$2; shift 2;;
    -h|--help) sed -n '2,13p' "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
if [[ ! -f $SHARED/bench/build_tools.sh ]]; then
  echo "instructions.sh needs the benchmark harness, which is not in this repository: $SHARED/bench/build_tools.sh is missing." >&2
  echo "Check out the project's shared material beside the repository as ../shared/, or set TENET_SHARED to its directory (see Performance in README.md)." >&2
  exit 2
fi
command -v callgrind_control >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
HARNESS=/tmp/natsbench/nats-bench-harness
[[ -x $HARNESS ]] || bash "$SHARED/bench/build_tools.sh" >&2
(cd "$ROOT" && cargo build --release -q -p tenet-mio)
WORK=$(mktemp -d /tmp/tenet-instructions.XXXXXX)
VPID=""
trap '[[ -n $VPID ]] && kill $VPID 2>/dev/null || true' EXIT

# total instructions in the newest dump file of this run
last_dump_total() { grep -h '^totals:' "$(ls -t "$WORK"/callgrind.out.* | head -1)" | awk '{ print $2 }'; }

# shellcheck source=tests/bench/js_config.sh
source "$ROOT/tests/bench/js_config.sh"
# js_conf CONF: compare.sh's JetStream configuration CONF, with its own store.
js_conf() {
  js_config "$1" "$PORT" "$WORK/js-$1.conf" "$WORK/store-$1"
  echo "$WORK/js-$1.conf"
}

if ((JS)); then
  JSBENCH=/tmp/natsbench/nats-jsbench
  [[ -x $JSBENCH ]] || bash "$SHARED/bench/build_tools.sh" >&2
  echo "| config | mode | storage | messages | instructions | per message |"
  echo "| --- | --- | --- | ---: | ---: | ---: |"
  for conf in $CONFS; do
    url="nats://127.0.0.1:$PORT"
    [[ $conf == plain ]] || url="nats://bench:benchpw@127.0.0.1:$PORT"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
      "$ROOT/target/release/tenet-mio" -c "$(js_conf "$conf")" >"$WORK/server-$conf.log" 2>&1 &
    VPID=$!
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    for mode in pub-async pull push; do
      for storage in memory file; do
        callgrind_control -z $VPID >/dev/null 2>&1
        "$JSBENCH" -s "$url" -mode "$mode" -storage "$storage" -ms 16 -n "$N" -max 10m \
          >"$WORK/$conf-$mode-$storage.txt" 2>&1 \
          || { echo "nats-jsbench failed: $(tail -3 "$WORK/$conf-$mode-$storage.txt")" >&2; exit 1; }
        callgrind_control -d $VPID >/dev/null 2>&1
        sleep 0.5
        total=$(last_dump_total)
        echo "| $conf | $mode | $storage | $N | $total | $((total / N)) |"
      done
    done
    kill $VPID; wait $VPID 2>/dev/null || true; VPID=""
  done
  echo
  echo "_$(date -u '+%Y-%m-%d %H:%M UTC'), valgrind $(valgrind --version | cut -d- -f2), dumps in ${WORK}_"
  exit 0
fi

echo "| config | test | size | messages | instructions | per message |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for conf in $CONFS; do
  url="nats://127.0.0.1:$PORT"
  [[ $conf == plain ]] || url="nats://bench:benchpw@127.0.0.1:$PORT"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
    "$ROOT/target/release/tenet-mio" -c "$CONFIGS/bench-$conf.conf" -a 127.0.0.1 -p $PORT \
    >"$WORK/server-$conf.log" 2>&1 &
  VPID=$!
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  for test in $TESTS; do
    for size in 16 128; do
      case $test in
        pub) subs=0; msgs=$N;;
        pubsub) subs=1; msgs=$N;;
        fanout) subs=$FANOUT; msgs=$((N * FANOUT));;
      esac
      callgrind_control -z $VPID >/dev/null 2>&1
      "$HARNESS" -s "$url" -np 1 -ns $subs -n "$N" -ms "$size" bench.x >"$WORK/$conf-$test-$size.txt" 2>&1 \
        || { echo "nats-bench-harness failed: $(tail -3 "$WORK/$conf-$test-$size.txt")" >&2; exit 1; }
      callgrind_control -d $VPID >/dev/null 2>&1
      sleep 0.5
      total=$(last_dump_total)
      echo "| $conf | $test | $size | $msgs | $total | $((total / msgs)) |"
    done
  done
  kill $VPID; wait $VPID 2>/dev/null || true; VPID=""
done
echo
echo "_$(date -u '+%Y-%m-%d %H:%M UTC'), valgrind $(valgrind --version | cut -d- -f2), dumps in ${WORK}_"
