#!/usr/bin/env bash
# tenet (tenet-mio, or tenet-async-std with --runtime async-std) against
# nats-server, side by side, in one run: every row of the performance table in
# the README, with the ratios.
#
#   tests/bench/compare.sh [--runs N] [--quick] [--nats PATH] [--runtime mio|async-std] [--only "throughput idle subs js store tls"]
#
# - Throughput and latency: ../shared/bench/bench.sh (the official nats.go bench
#   package) on bench-plain.conf and bench-perms.conf, one cell at a time on each
#   of four servers in turn (tenet plain and perms on 14222-14223, nats-server
#   plain and perms on 14224-14225), all running throughout.
#   Around every cell the servers' utime+stime is read from /proc/PID/stat, which
#   gives the server CPU time per message and how busy the server was.
# - Memory with 10,000 idle connections, and 1,000,000 subscriptions over 100,000
#   subjects (time to subscribe, memory, delivery rate of publishes to random
#   subscribed subjects): tests/src/bin/tenet-load.rs, each server fresh.
# - TLS (--only tls, not in the default set): the bench.sh cells over tls://
#   (bench-plain.conf with a tls block; a CA and certificate made with
#   openssl), and 10,000 idle TLS connections (tenet-load idle --tls-ca).
# - JetStream (--only js, not in the default set): ../shared/bench nats-jsbench
#   (the official nats.go JetStream API): synchronous publish, asynchronous
#   publish with a window, pull and push consume; memory and file; 16 and 128
#   bytes; plain and with an account and permissions. Server CPU per message,
#   resident memory and bytes on disk come from the tool's own sampling.
# - File store (--only store, not in the default set), each server fresh on its own
#   store (14240 tenet, 14241 nats-server): a file stream filled with 1,000,000
#   messages of 16 bytes by nats-jsbench (pub-async, -keep): resident memory right
#   after the fill and after 5 s idle, bytes on disk. Then a fresh one with 1,000,000
#   messages of 1,000 bytes (~1 GB), and RUNS times: kill -9 the server and start it
#   again on the same store, then RUNS times the same after SIGTERM (time to exit
#   measured too); each restart is timed from exec until a client (tenet-load
#   stream-wait) gets a $JS.API.STREAM.INFO showing all 1,000,000 messages, with the
#   server's resident memory at that moment. Medians; a server that does not come
#   back, or comes back with another count, fails the run. The stores are deleted.
#
# Needs nats-server 2.9.10 (apt-get install nats-server) and the bench tools
# (bash ../shared/bench/build_tools.sh, run here when /tmp/natsbench is missing).
# --quick runs 1 repetition with a tenth of the messages (a smoke run, not a measurement).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED=${TENET_SHARED:-$ROOT/../shared}
BENCH_SH=$SHARED/bench/bench.sh
CONFIGS=$SHARED/bench/configs
NATS=${NATS_SERVER:-nats-server}
RUNS=3
SCALE=1
ONLY="throughput idle subs"
RUNTIME=mio
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2;;
    --quick) RUNS=1; SCALE=10; shift;;
    --nats) NATS=$2; shift 2;;
    --only) ONLY=$2; shift 2;;
    --runtime) RUNTIME=$2; shift 2;;
    -h|--help) sed -n '2,35p' "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done

N_PUB=$((5000000 / SCALE)); N_SUB=$((2000000 / SCALE)); N_FAN=$((1000000 / SCALE))
RTT_N=$((20000 / SCALE)); FANOUT=5; PREFLIGHT=1000
IDLE_CONNS=10000; SUBS=1000000; SUBJECTS=100000; PUBLISHES=$((200000 / SCALE))
TENET_PORT=14222; NATS_PORT=14226; JS_PORT=14230
JS_N=$((200000 / SCALE)); JS_N_SYNC=$((5000 / SCALE))
# File store: messages stored, their sizes, the idle pause before memory is read again,
# and how long a restarted server gets to show them all.
STORE_PORT=14240; STORE_N=$((1000000 / SCALE)); STORE_SMALL=16; STORE_BIG=1000; STORE_IDLE=5; STORE_WAIT=600
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=tests/bench/js_config.sh
source "$ROOT/tests/bench/js_config.sh"

if [[ ! -f $BENCH_SH ]]; then
  echo "compare.sh needs the benchmark harness, which is not in this repository: $BENCH_SH is missing." >&2
  echo "Check out the project's shared material beside the repository as ../shared/, or set TENET_SHARED to its directory (see Performance in README.md)." >&2
  exit 2
fi
command -v "$NATS" >/dev/null || { echo "nats-server not found (apt-get install nats-server, or --nats PATH)" >&2; exit 2; }
[[ -x $BENCH_SH ]] || { echo "$BENCH_SH is not executable" >&2; exit 2; }
[[ -x /tmp/natsbench/nats-bench-harness && -x /tmp/natsbench/nats-rtt ]] || bash "$SHARED/bench/build_tools.sh" >&2
case $RUNTIME in
  mio|async-std) ;;
  *) echo "--runtime is mio or async-std, not $RUNTIME" >&2; exit 2;;
esac
(cd "$ROOT" && cargo build --release -q -p "tenet-$RUNTIME" && cargo build --release -q -p tenet-tests --bin tenet-load)
TENET=$ROOT/target/release/tenet-$RUNTIME
LOAD=$ROOT/target/release/tenet-load
# One socket per idle connection, in the servers and in tenet-load.
ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/tenet-compare.XXXXXX)
PIDS=()
# File stores of the store set (~1 GB each), deleted even when the run fails.
STORE_DIRS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  ((${#STORE_DIRS[@]})) || return 0
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${STORE_DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# start NAME PORT CONF: sets SPID to the server's pid once the port accepts connections
start() {
  local name=$1 port=$2 conf=$3 bin
  if [[ $name == tenet ]]; then bin=$TENET; else bin=$NATS; fi
  "$bin" -c "$conf" -a 127.0.0.1 -p "$port" >"$WORK/$name-$port.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { SPID=$pid; return; }
    sleep 0.1
  done
  echo "$name did not open port $port:" >&2; cat "$WORK/$name-$port.log" >&2; exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; forget "$1"; }
# forget PID: a server that has exited leaves PIDS (its number may be reused).
forget() {
  local p keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Busy ticks of the whole machine (all cores): everything but idle and iowait.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
human() { awk -v x="$1" 'BEGIN { if (x >= 1e6) printf "%.2fM", x / 1e6; else if (x >= 1e3) printf "%.0fk", x / 1e3; else printf "%.0f", x }'; }

# One bench.sh cell against one server: appends "server conf test size rate cpu_ns busy p50 p99" to $RESULTS.
RESULTS=$WORK/results.txt
: >"$RESULTS"
cell() {
  local who=$1 pid=$2 port=$3 conf=$4 test=$5 size=$6 url raw t0 t1 c0 c1 msgs rate p50="" p99=""
  local tls_args=()
  url="nats://127.0.0.1:$port"
  [[ $conf == perms ]] && url="nats://bench:benchpw@127.0.0.1:$port"
  [[ $conf == tls ]] && { url="tls://127.0.0.1:$port"; tls_args=(--tlsca "$WORK/tls/ca.pem"); }
  raw=$WORK/raw-$who-$conf-$test-$size.csv
  c0=$(cpu_ticks "$pid"); m0=$(machine_ticks); t0=$(date +%s.%N)
  "$BENCH_SH" --url "$url" "${tls_args[@]}" --tests "$test" --sizes "$size" --runs "$RUNS" --raw "$raw" \
    --n-pub "$N_PUB" --n-sub "$N_SUB" --n-fan "$N_FAN" --fanout "$FANOUT" --rtt-n "$RTT_N" \
    --label "$who-$conf" >"$WORK/table-$who-$conf-$test-$size.md" 2>>"$WORK/bench.log" \
    || { echo "bench.sh failed for $who $conf $test $size (see $WORK/bench.log)" >&2; exit 1; }
  c1=$(cpu_ticks "$pid"); m1=$(machine_ticks); t1=$(date +%s.%N)
  case $test in
    pub) msgs=$((RUNS * N_PUB + PREFLIGHT)); rate=$(awk -F, 'NR > 1 { print $5 }' "$raw" | median);;
    pubsub) msgs=$((RUNS * N_SUB + PREFLIGHT)); rate=$(awk -F, 'NR > 1 { print $6 }' "$raw" | median);;
    fanout) msgs=$((RUNS * N_FAN * FANOUT + PREFLIGHT)); rate=$(awk -F, 'NR > 1 { print $6 }' "$raw" | median);;
    rtt) msgs=$((RUNS * RTT_N * 2 + PREFLIGHT)); rate=$(awk -F, 'NR > 1 { print $11 }' "$raw" | median)
         p50=$(awk -F, 'NR > 1 { print $7 }' "$raw" | median); p99=$(awk -F, 'NR > 1 { print $9 }' "$raw" | median);;
  esac
  awk -v w="$who" -v c="$conf" -v t="$test" -v s="$size" -v r="$rate" -v m="$msgs" \
      -v d=$((c1 - c0)) -v md=$((m1 - m0)) -v hz="$CLK_TCK" -v t0="$t0" -v t1="$t1" -v p50="${p50:--}" -v p99="${p99:--}" \
    'BEGIN { printf "%s %s %s %s %s %.0f %.0f %s %s %.0f\n", w, c, t, s, r, d / hz * 1e9 / m, 100 * d / hz / (t1 - t0), p50, p99, 100 * (md - d) / hz / (t1 - t0) }' >>"$RESULTS"
  echo "  $who $conf $test $size: $(tail -1 "$RESULTS" | cut -d' ' -f5-)" >&2
}

get() { # server conf test size field(5=rate 6=cpu_ns 7=busy 8=p50 9=p99 10=everything else's busy)
  awk -v w="$1" -v c="$2" -v t="$3" -v s="$4" -v f="$5" '$1 == w && $2 == c && $3 == t && $4 == s { print $f }' "$RESULTS"
}

if [[ " $ONLY " == *" throughput "* ]]; then
  # All four servers run throughout (idle ones cost nothing), and every cell is
  # measured on each in turn, so drift of the machine hits all four alike.
  echo "== bench.sh cells: tenet and nats-server, plain and perms, in turn" >&2
  declare -A PID PORT
  port=$TENET_PORT
  for who in tenet nats; do
    for conf in plain perms; do
      start $who $port "$CONFIGS/bench-$conf.conf"
      PID[$who-$conf]=$SPID; PORT[$who-$conf]=$port; port=$((port + 1))
    done
  done
  for size in 16 128; do
    for test in pub pubsub fanout rtt; do
      for who in tenet nats; do
        for conf in plain perms; do
          cell $who "${PID[$who-$conf]}" "${PORT[$who-$conf]}" $conf $test $size
        done
      done
    done
  done
  for p in "${PID[@]}"; do stop "$p"; done
fi

# tls_setup: a CA and a server certificate for 127.0.0.1 (openssl), and a
# configuration with bench-plain.conf's settings and a tls block.
tls_setup() {
  local dir=$WORK/tls
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/ca.key" \
    -out "$dir/ca.pem" -days 2 -subj "/CN=compare.sh CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/server.key" \
    -out "$dir/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/server.pem" -days 2 -extfile "$dir/ext.cnf" 2>/dev/null
  { cat "$CONFIGS/bench-plain.conf"; printf '\ntls { cert_file: "%s", key_file: "%s" }\n' "$dir/server.pem" "$dir/server.key"; } >"$WORK/bench-tls.conf"
}

IDLE_TLS_T="" IDLE_TLS_N=""
if [[ " $ONLY " == *" tls "* ]]; then
  echo "== TLS: bench.sh cells over tls://, and $IDLE_CONNS idle TLS connections" >&2
  command -v openssl >/dev/null || { echo "the tls cells need openssl (apt-get install openssl)" >&2; exit 2; }
  tls_setup
  declare -A TPID TPORT
  port=$TENET_PORT
  for who in tenet nats; do
    start $who $port "$WORK/bench-tls.conf"
    TPID[$who]=$SPID; TPORT[$who]=$port; port=$((port + 1))
  done
  for size in 16 128; do
    for test in pub pubsub fanout rtt; do
      for who in tenet nats; do
        cell $who "${TPID[$who]}" "${TPORT[$who]}" tls $test $size
      done
    done
  done
  for who in tenet nats; do stop "${TPID[$who]}"; done
  start tenet $TENET_PORT "$WORK/bench-tls.conf"; pid=$SPID
  IDLE_TLS_T=$("$LOAD" idle --addr 127.0.0.1:$TENET_PORT --pid "$pid" --conns $IDLE_CONNS --tls-ca "$WORK/tls/ca.pem"); stop "$pid"
  start nats $NATS_PORT "$WORK/bench-tls.conf"; pid=$SPID
  IDLE_TLS_N=$("$LOAD" idle --addr 127.0.0.1:$NATS_PORT --pid "$pid" --conns $IDLE_CONNS --tls-ca "$WORK/tls/ca.pem"); stop "$pid"
fi

JS_RESULTS=$WORK/js.txt
: >"$JS_RESULTS"
# js_conf WHO CONF PORT: a JetStream configuration file (plain, or an account
# with permissions that allow the JetStream API) with its own store directory.
js_conf() {
  local file=$WORK/js-$1-$2.conf
  js_config "$2" "$3" "$file" "$WORK/store-$1-$2"
  echo "$file"
}
# One nats-jsbench cell, RUNS times on a fresh server each: appends
# "who conf mode storage size rate cpu_ns p50 p99 rss_kb store_kb" (medians) to $JS_RESULTS.
js_cell() {
  local who=$1 conf=$2 mode=$3 storage=$4 size=$5 n=$JS_N line rates="" cpus="" p50s="" p99s="" rsss="" stores="" url
  [[ $mode == pub-sync ]] && n=$JS_N_SYNC
  url="nats://127.0.0.1:$JS_PORT"; [[ $conf == perms ]] && url="nats://bench:benchpw@127.0.0.1:$JS_PORT"
  for _ in $(seq "$RUNS"); do
    start "$who" "$JS_PORT" "$(js_conf "$who" "$conf" "$JS_PORT")"
    line=$(/tmp/natsbench/nats-jsbench -s "$url" -mode "$mode" -storage "$storage" -ms "$size" -n "$n" \
      -pid "$SPID" -store-dir "$WORK/store-$who-$conf" 2>>"$WORK/jsbench.log" | grep '^jsbench' || true)
    stop "$SPID"
    [[ $line == *" ok=1 "* ]] || { echo "nats-jsbench failed: $who $conf $mode $storage $size: $line (see $WORK/jsbench.log)" >&2; exit 1; }
    rates+="$(field "$line" rate) "; cpus+="$(awk -v t="$(field "$line" cpu_ticks)" -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", t / hz * 1e9 / n }') "
    p50s+="$(field "$line" p50_us) "; p99s+="$(field "$line" p99_us) "; rsss+="$(field "$line" rss_kb) "; stores+="$(field "$line" store_kb) "
  done
  med() { tr ' ' '\n' <<<"$1" | grep -v '^-\?$' | median; }
  echo "$who $conf $mode $storage $size $(med "$rates") $(med "$cpus") $(med "$p50s" || true) $(med "$p99s" || true) $(med "$rsss") $(med "$stores" || true)" >>"$JS_RESULTS"
  echo "  $who $conf $mode $storage $size: $(tail -1 "$JS_RESULTS" | cut -d' ' -f6-)" >&2
}
js_get() { awk -v w="$1" -v c="$2" -v m="$3" -v st="$4" -v s="$5" -v f="$6" '$1 == w && $2 == c && $3 == m && $4 == st && $5 == s { print $f }' "$JS_RESULTS"; }
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

IDLE_T="" IDLE_N="" SUBS_T="" SUBS_N=""
if [[ " $ONLY " == *" idle "* ]]; then
  echo "== $IDLE_CONNS idle connections" >&2
  start tenet $TENET_PORT "$CONFIGS/bench-plain.conf"; pid=$SPID
  IDLE_T=$("$LOAD" idle --addr 127.0.0.1:$TENET_PORT --pid "$pid" --conns $IDLE_CONNS); stop "$pid"
  start nats $NATS_PORT "$CONFIGS/bench-plain.conf"; pid=$SPID
  IDLE_N=$("$LOAD" idle --addr 127.0.0.1:$NATS_PORT --pid "$pid" --conns $IDLE_CONNS); stop "$pid"
  echo "  tenet: $IDLE_T" >&2; echo "  nats:  $IDLE_N" >&2
fi
if [[ " $ONLY " == *" subs "* ]]; then
  echo "== $SUBS subscriptions over $SUBJECTS subjects" >&2
  start tenet $TENET_PORT "$CONFIGS/bench-plain.conf"; pid=$SPID
  SUBS_T=$("$LOAD" subs --addr 127.0.0.1:$TENET_PORT --pid "$pid" --subs $SUBS --subjects $SUBJECTS --publishes "$PUBLISHES"); stop "$pid"
  start nats $NATS_PORT "$CONFIGS/bench-plain.conf"; pid=$SPID
  SUBS_N=$("$LOAD" subs --addr 127.0.0.1:$NATS_PORT --pid "$pid" --subs $SUBS --subjects $SUBJECTS --publishes "$PUBLISHES"); stop "$pid"
  echo "  tenet: $SUBS_T" >&2; echo "  nats:  $SUBS_N" >&2
fi
if [[ " $ONLY " == *" js "* ]]; then
  echo "== JetStream: nats-jsbench cells, tenet and nats-server in turn" >&2
  [[ -x /tmp/natsbench/nats-jsbench ]] || bash "$SHARED/bench/build_tools.sh" >&2
  for size in 16 128; do
    for storage in memory file; do
      for mode in pub-sync pub-async pull push; do
        for conf in plain perms; do
          for who in tenet nats; do
            js_cell $who $conf $mode $storage $size
          done
        done
      done
    done
  done
fi

# File store: "who key value" lines.
STORE_RESULTS=$WORK/store.txt
: >"$STORE_RESULTS"
store_put() { echo "$1 $2 $3" >>"$STORE_RESULTS"; }
store_get() { awk -v w="$1" -v k="$2" '$1 == w && $2 == k { print $3 }' "$STORE_RESULTS"; }
vmrss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
since() { awk -v a="$1" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.3f", b - a }'; }
# store_fill WHO PID PORT DIR SIZE: nats-jsbench fills stream JSBENCH (file storage)
# with $STORE_N messages of SIZE bytes and keeps it; sets FILL_LINE to its line.
store_fill() {
  FILL_LINE=$(/tmp/natsbench/nats-jsbench -s "nats://127.0.0.1:$3" -mode pub-async -storage file -ms "$5" -n "$STORE_N" \
    -keep -max 30m -pid "$2" -store-dir "$4" 2>>"$WORK/jsbench.log" | grep '^jsbench' || true)
  [[ $FILL_LINE == *" ok=1 "* ]] || { echo "nats-jsbench fill failed: $1, $STORE_N x $5 bytes: $FILL_LINE (see $WORK/jsbench.log)" >&2; exit 1; }
}
# halt PID SIGNAL: sends SIGNAL and waits (120 s at most) until the server has
# exited; sets HALT_SECS (signal to exit) and HALT_RC (its exit status).
halt() {
  local pid=$1 sig=$2 t0 state=""
  t0=${EPOCHREALTIME/,/.}
  kill -s "$sig" "$pid"
  for _ in $(seq 12000); do
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
    [[ -z $state || $state == Z ]] && break
    sleep 0.01
  done
  [[ -z $state || $state == Z ]] || { echo "server $pid did not exit within 120 s of SIG$sig" >&2; exit 1; }
  HALT_SECS=$(since "$t0")
  HALT_RC=0; wait "$pid" 2>/dev/null || HALT_RC=$?
  forget "$pid"
}
# restart WHO PORT CONF: starts the server again on its store and waits until a
# $JS.API.STREAM.INFO shows all $STORE_N messages of JSBENCH; sets SPID and
# WAIT_LINE (tenet-load stream-wait's: secs from exec, rss_kib then).
restart() {
  local who=$1 port=$2 conf=$3 bin t0
  if [[ $who == tenet ]]; then bin=$TENET; else bin=$NATS; fi
  t0=${EPOCHREALTIME/,/.}
  "$bin" -c "$conf" -a 127.0.0.1 -p "$port" >>"$WORK/$who-$port.log" 2>&1 &
  SPID=$!
  PIDS+=("$SPID")
  WAIT_LINE=$("$LOAD" stream-wait --addr "127.0.0.1:$port" --pid "$SPID" --stream JSBENCH --messages "$STORE_N" \
    --since "$t0" --timeout "$STORE_WAIT" 2>>"$WORK/store.log") || {
    echo "$who did not come back with $STORE_N messages in JSBENCH:" >&2
    tail -1 "$WORK/store.log" >&2; echo "its log, $WORK/$who-$port.log, ends:" >&2; tail -5 "$WORK/$who-$port.log" >&2
    exit 1
  }
}
if [[ " $ONLY " == *" store "* ]]; then
  echo "== file store: $STORE_N messages of $STORE_SMALL bytes (memory), of $STORE_BIG bytes (restart), tenet and nats-server in turn" >&2
  [[ -x /tmp/natsbench/nats-jsbench ]] || bash "$SHARED/bench/build_tools.sh" >&2
  port=$STORE_PORT
  for who in tenet nats; do
    dir=$WORK/store-$who-plain
    STORE_DIRS+=("$dir")
    # 1. Memory and disk with STORE_N small messages.
    conf=$(js_conf "$who" plain "$port")
    start "$who" "$port" "$conf"
    store_fill "$who" "$SPID" "$port" "$dir" "$STORE_SMALL"
    store_put "$who" small_rate "$(field "$FILL_LINE" rate)"
    store_put "$who" small_rss_fill "$(field "$FILL_LINE" rss_kb)"
    store_put "$who" small_store_bytes "$(field "$FILL_LINE" store_bytes)"
    sleep "$STORE_IDLE"
    store_put "$who" small_rss_idle "$(vmrss_kb "$SPID")"
    store_put "$who" small_du_kb "$(du -sk "$dir" | cut -f1)"
    echo "  $who $STORE_N x $STORE_SMALL B: $FILL_LINE; after ${STORE_IDLE}s idle rss_kb=$(store_get "$who" small_rss_idle) du_kb=$(store_get "$who" small_du_kb)" >&2
    halt "$SPID" TERM
    rm -rf "$dir"
    # 2. Restarts on STORE_N big messages: kill -9 first (the first one right
    # after the fill, as a crash after a burst of writes), then SIGTERM.
    conf=$(js_conf "$who" plain "$port")
    start "$who" "$port" "$conf"
    store_fill "$who" "$SPID" "$port" "$dir" "$STORE_BIG"
    store_put "$who" big_rate "$(field "$FILL_LINE" rate)"
    store_put "$who" big_rss_fill "$(field "$FILL_LINE" rss_kb)"
    store_put "$who" big_store_bytes "$(field "$FILL_LINE" store_bytes)"
    store_put "$who" big_du_kb "$(du -sk "$dir" | cut -f1)"
    echo "  $who $STORE_N x $STORE_BIG B: $FILL_LINE" >&2
    for sig in KILL TERM; do
      secs="" rsss="" exits=""
      for run in $(seq "$RUNS"); do
        halt "$SPID" "$sig"
        restart "$who" "$port" "$conf"
        echo "  $who SIG$sig run $run: exited in ${HALT_SECS}s (status $HALT_RC); $WAIT_LINE" >&2
        secs+="$(field "$WAIT_LINE" secs) "; rsss+="$(field "$WAIT_LINE" rss_kib) "; exits+="$HALT_SECS "
      done
      store_put "$who" "big_${sig}_secs" "$(tr ' ' '\n' <<<"$secs" | grep . | median)"
      store_put "$who" "big_${sig}_runs" "$(tr ' ' '/' <<<"${secs% }")"
      store_put "$who" "big_${sig}_rss" "$(tr ' ' '\n' <<<"$rsss" | grep . | median)"
      store_put "$who" "big_${sig}_exit" "$(tr ' ' '\n' <<<"$exits" | grep . | median)"
    done
    halt "$SPID" TERM
    rm -rf "$dir"
    port=$((port + 1))
  done
fi

# The table.
echo "## tenet-$RUNTIME vs $("$NATS" --version 2>&1 | head -1)"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -m); bench.sh median of $RUNS runs per cell" \
  "(n: publish-only $N_PUB, 1:1 $N_SUB, 1:$FANOUT $N_FAN, request/reply $RTT_N)."
echo "CPU = server utime+stime per message delivered (per message published for publish-only, per request+reply for request/reply);"
echo "busy = server CPU time over the cell's wall time (100% = one core); rest = the CPU everything else used meanwhile"
echo "(the benchmark clients, mostly), of $(($(nproc) * 100))% on this machine."
if [[ -s $RESULTS ]]; then
  echo
  echo "| config | test | size | tenet msgs/s | nats msgs/s | ratio | tenet CPU ns/msg (busy, rest) | nats CPU ns/msg (busy, rest) | CPU ratio |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for conf in plain perms tls; do
    for test in pub pubsub fanout; do
      for size in 16 128; do
        tr=$(get tenet $conf $test $size 5); nr=$(get nats $conf $test $size 5)
        [[ -n $tr ]] || continue
        tc=$(get tenet $conf $test $size 6); nc=$(get nats $conf $test $size 6)
        case $test in pub) name="publish only";; pubsub) name="1 pub : 1 sub";; fanout) name="1 pub : $FANOUT subs";; esac
        echo "| $conf | $name | $size | $(human "$tr") | $(human "$nr") | $(ratio "$tr" "$nr")x" \
          "| $tc ($(get tenet $conf $test $size 7)%, $(get tenet $conf $test $size 10)%)" \
          "| $nc ($(get nats $conf $test $size 7)%, $(get nats $conf $test $size 10)%) | $(ratio "$tc" "$nc")x |"
      done
    done
  done
  echo
  echo "| config | request/reply | size | tenet p50 / p99 µs | nats p50 / p99 µs | p50 ratio | p99 ratio | tenet CPU ns/msg | nats CPU ns/msg | CPU ratio |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for conf in plain perms tls; do
    for size in 16 128; do
      t50=$(get tenet $conf rtt $size 8); n50=$(get nats $conf rtt $size 8)
      [[ -n $t50 ]] || continue
      t99=$(get tenet $conf rtt $size 9); n99=$(get nats $conf rtt $size 9)
      tc=$(get tenet $conf rtt $size 6); nc=$(get nats $conf rtt $size 6)
      echo "| $conf | closed loop | $size | $t50 / $t99 | $n50 / $n99 | $(ratio "$t50" "$n50")x | $(ratio "$t99" "$n99")x | $tc | $nc | $(ratio "$tc" "$nc")x |"
    done
  done
  [[ -n $(get tenet plain pub 16 5) ]] && {
  echo
  echo "| tenet: perms / plain | size | msgs/s ratio | CPU ns/msg ratio |"
  echo "| --- | ---: | ---: | ---: |"
  }
  for test in pub pubsub fanout; do
    for size in 16 128; do
      pr=$(get tenet perms $test $size 5); lr=$(get tenet plain $test $size 5)
      [[ -n $pr && -n $lr ]] || continue
      echo "| $test | $size | $(ratio "$pr" "$lr") | $(ratio "$(get tenet perms $test $size 6)" "$(get tenet plain $test $size 6)") |"
    done
  done
fi
if [[ -n $IDLE_T || -n $SUBS_T || -n $IDLE_TLS_T ]]; then
  echo
  echo "| load | measure | tenet | nats-server | ratio |"
  echo "| --- | --- | ---: | ---: | ---: |"
fi
if [[ -n $IDLE_T ]]; then
  t=$(field "$IDLE_T" rss_after_kib); n=$(field "$IDLE_N" rss_after_kib)
  echo "| $IDLE_CONNS idle connections | resident memory MiB | $((t / 1024)) | $((n / 1024)) | $(ratio "$t" "$n")x |"
  echo "| $IDLE_CONNS idle connections | bytes per connection | $(field "$IDLE_T" per_conn_bytes) | $(field "$IDLE_N" per_conn_bytes) | $(ratio "$(field "$IDLE_T" per_conn_bytes)" "$(field "$IDLE_N" per_conn_bytes)")x |"
fi
if [[ -n $IDLE_TLS_T ]]; then
  t=$(field "$IDLE_TLS_T" rss_after_kib); n=$(field "$IDLE_TLS_N" rss_after_kib)
  echo "| $IDLE_CONNS idle TLS connections | resident memory MiB | $((t / 1024)) | $((n / 1024)) | $(ratio "$t" "$n")x |"
  echo "| $IDLE_CONNS idle TLS connections | bytes per connection | $(field "$IDLE_TLS_T" per_conn_bytes) | $(field "$IDLE_TLS_N" per_conn_bytes) | $(ratio "$(field "$IDLE_TLS_T" per_conn_bytes)" "$(field "$IDLE_TLS_N" per_conn_bytes)")x |"
fi
if [[ -n $SUBS_T ]]; then
  t=$(field "$SUBS_T" rss_after_kib); n=$(field "$SUBS_N" rss_after_kib)
  echo "| $SUBS subs / $SUBJECTS subjects | resident memory MiB | $((t / 1024)) | $((n / 1024)) | $(ratio "$t" "$n")x |"
  t=$(field "$SUBS_T" subscribe_secs); n=$(field "$SUBS_N" subscribe_secs)
  echo "| $SUBS subs / $SUBJECTS subjects | seconds to subscribe all | $t | $n | $(ratio "$t" "$n")x |"
  t=$(field "$SUBS_T" publishes_per_sec); n=$(field "$SUBS_N" publishes_per_sec)
  echo "| $SUBS subs / $SUBJECTS subjects | publishes/s to random subjects ($((SUBS / SUBJECTS)) deliveries each) | $(human "$t") | $(human "$n") | $(ratio "$t" "$n")x |"
fi
if [[ -s $JS_RESULTS ]]; then
  echo
  echo "JetStream: nats-jsbench, median of $RUNS runs per cell on a fresh server each (n: $JS_N, $JS_N_SYNC for pub-sync);"
  echo "CPU = server utime+stime per message over the measured phase; RSS at its end; disk = the store directory's KiB."
  echo
  echo "| config | mode | storage | size | tenet msgs/s | nats msgs/s | ratio | tenet CPU ns/msg | nats CPU ns/msg | CPU ratio | p50 / p99 µs tenet | nats | RSS MiB tenet / nats | disk KiB tenet / nats |"
  echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for conf in plain perms; do
    for mode in pub-sync pub-async pull push; do
      for storage in memory file; do
        for size in 16 128; do
          tr=$(js_get tenet $conf $mode $storage $size 6); nr=$(js_get nats $conf $mode $storage $size 6)
          [[ -n $tr ]] || continue
          tc=$(js_get tenet $conf $mode $storage $size 7); nc=$(js_get nats $conf $mode $storage $size 7)
          lat="-"; nlat="-"
          [[ $mode == pub-sync ]] && lat="$(js_get tenet $conf $mode $storage $size 8) / $(js_get tenet $conf $mode $storage $size 9)" \
            && nlat="$(js_get nats $conf $mode $storage $size 8) / $(js_get nats $conf $mode $storage $size 9)"
          echo "| $conf | $mode | $storage | $size | $(human "$tr") | $(human "$nr") | $(ratio "$tr" "$nr")x | $tc | $nc | $(ratio "$tc" "$nc")x" \
            "| $lat | $nlat | $(( $(js_get tenet $conf $mode $storage $size 10) / 1024 )) / $(( $(js_get nats $conf $mode $storage $size 10) / 1024 ))" \
            "| $(js_get tenet $conf $mode $storage $size 11) / $(js_get nats $conf $mode $storage $size 11) |"
        done
      done
    done
  done
fi
if [[ -s $STORE_RESULTS ]]; then
  mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
  srow() { # label measure key [format: mib|human|raw]
    local t n
    t=$(store_get tenet "$3"); n=$(store_get nats "$3")
    case ${4:-raw} in
      mib) echo "| $1 | $2 | $(mib "$t") | $(mib "$n") | $(ratio "$t" "$n")x |";;
      human) echo "| $1 | $2 | $(human "$t") | $(human "$n") | $(ratio "$t" "$n")x |";;
      raw) echo "| $1 | $2 | $t | $n | $(ratio "$t" "$n")x |";;
    esac
  }
  small="$(human "$STORE_N") x $STORE_SMALL B" big="$(human "$STORE_N") x $STORE_BIG B"
  echo
  echo "File store: one stream JSBENCH (file storage) filled by nats-jsbench pub-async (-keep), a fresh server and store per fill."
  echo "RSS = server VmRSS; disk = du -sk of the store directory (and the tool's apparent bytes)."
  echo "Restart = wall time from exec of the server on the filled store until a \$JS.API.STREAM.INFO shows all $STORE_N messages"
  echo "(tenet-load stream-wait, polling every 5 ms), median of $RUNS restarts of the same store per row; the kill -9 restarts come first"
  echo "(the first right after the fill), then the SIGTERM ones. RSS after restart = VmRSS when that stream info answered."
  echo "The page cache is not dropped: restarts read a store the kernel still holds in memory, as soon after writing it."
  echo
  echo "| store | measure | tenet | nats-server | ratio |"
  echo "| --- | --- | ---: | ---: | ---: |"
  srow "$small" "fill rate, msgs/s" small_rate human
  srow "$small" "RSS MiB right after the fill" small_rss_fill mib
  srow "$small" "RSS MiB after ${STORE_IDLE} s idle" small_rss_idle mib
  srow "$small" "disk KiB (du -sk)" small_du_kb
  srow "$small" "disk bytes (apparent)" small_store_bytes
  srow "$big" "fill rate, msgs/s" big_rate human
  srow "$big" "RSS MiB right after the fill" big_rss_fill mib
  srow "$big" "disk MiB (du -sk)" big_du_kb mib
  srow "$big" "restart after SIGTERM: seconds until stream info shows all" big_TERM_secs
  srow "$big" "restart after kill -9: seconds until stream info shows all" big_KILL_secs
  srow "$big" "RSS MiB after restart (SIGTERM)" big_TERM_rss mib
  srow "$big" "RSS MiB after restart (kill -9)" big_KILL_rss mib
  srow "$big" "seconds from SIGTERM to exit" big_TERM_exit
  echo
  echo "Restart seconds per run (in order): tenet SIGTERM $(store_get tenet big_TERM_runs), kill -9 $(store_get tenet big_KILL_runs);" \
    "nats-server SIGTERM $(store_get nats big_TERM_runs), kill -9 $(store_get nats big_KILL_runs)."
fi
echo
echo "_raw figures: ${WORK}_"
