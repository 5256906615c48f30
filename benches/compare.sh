#!/usr/bin/env bash
# Side-by-side benchmark: ringcache against redis-server, memcached (2 threads) and twemproxy in
# front of 2 redis-servers / 2 memcacheds, with the same load generator and workloads, in one run,
# plus the floor server (benches/floor: answers without storing anything) as the machine's limit.
# Writes BENCHMARKS.md (a markdown table plus the machine description); the sections written by
# hand after it (headings that say "(by hand") are kept.
#
#   benches/compare.sh                 # 10 s per workload and target, 3 rounds
#   DURATION=3 ROUNDS=1 benches/compare.sh   # quicker, noisier
#
# Each workload runs ROUNDS times over all its targets in turn (interleaved, so that a noisy
# stretch of the machine hits every target alike); the table reports medians over the rounds.
#
# Everything it starts listens on free loopback ports and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-BENCHMARKS.md}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------------------------------
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v memcached >/dev/null || need+=(memcached)
command -v nutcracker >/dev/null && [ -x "$(command -v nutcracker)" ] || need+=(nutcracker)
command -v memcaslap >/dev/null || need+=(libmemcached-tools)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NUTCRACKER=$(command -v nutcracker || echo /usr/sbin/nutcracker)

cargo build --release --quiet --bin ringcache
LOAD=$(cargo bench --bench load --no-run 2>&1 | grep -o 'target/release/deps/load-[0-9a-f]*' | head -n1)
FLOOR=$(cargo bench --bench floor --no-run 2>&1 | grep -o 'target/release/deps/floor-[0-9a-f]*' | head -n1)
RINGCACHE=target/release/ringcache

# Pin servers and the generator to different cores when there are at least two.
CORES=$(nproc)
if [ "$CORES" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_PIN=(taskset -c 0)
  LOAD_PIN=(taskset -c 1)
  PINNING="servers pinned to core 0, load generator to core 1 (taskset)"
else
  SERVER_PIN=()
  LOAD_PIN=()
  PINNING="no pinning (fewer than 2 cores or no taskset)"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  return 1
}
start() { # start NAME CMD...: runs in the background on the server core, records the pid
  local name=$1
  shift
  "${SERVER_PIN[@]}" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# --- servers -------------------------------------------------------------------------------------
REDIS=$(free_port); start redis redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no
RB1=$(free_port); start rb1 redis-server --port "$RB1" --bind 127.0.0.1 --save "" --appendonly no
RB2=$(free_port); start rb2 redis-server --port "$RB2" --bind 127.0.0.1 --save "" --appendonly no
MC=$(free_port); start mc memcached -l 127.0.0.1 -p "$MC" -t 2 -m 2048 -U 0 -u root
MB1=$(free_port); start mb1 memcached -l 127.0.0.1 -p "$MB1" -t 1 -m 1024 -U 0 -u root
MB2=$(free_port); start mb2 memcached -l 127.0.0.1 -p "$MB2" -t 1 -m 1024 -U 0 -u root
TWR=$(free_port); TWM=$(free_port)
cat >"$WORK/nutcracker.yml" <<EOF
redis_pool:
  listen: 127.0.0.1:$TWR
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
    - 127.0.0.1:$RB1:1 rb1
    - 127.0.0.1:$RB2:1 rb2
memcache_pool:
  listen: 127.0.0.1:$TWM
  hash: fnv1a_64
  distribution: ketama
  servers:
    - 127.0.0.1:$MB1:1 mb1
    - 127.0.0.1:$MB2:1 mb2
EOF
start twemproxy "$NUTCRACKER" -c "$WORK/nutcracker.yml" -s "$(free_port)"
RC_RESP=$(free_port); RC_MC=$(free_port)
# As shipped: metrics on (a Prometheus listener and per-command counters and histograms).
cat >"$WORK/ringcache.toml" <<EOF
[listen]
resp = "127.0.0.1:$RC_RESP"
memcache = "127.0.0.1:$RC_MC"
metrics = "127.0.0.1:$(free_port)"

[[nodes]]
name = "cache-a"
max_memory = "1GiB"

[[nodes]]
name = "cache-b"
max_memory = "1GiB"
EOF
start ringcache "$RINGCACHE" --config "$WORK/ringcache.toml"
# ringcache as a proxy in front of the same four servers as twemproxy's pools, as remote nodes
# (one instance per pool: a ring serves both protocols, and each pool speaks one).
RP_RESP=$(free_port); RP_MC=$(free_port)
cat >"$WORK/ringcache-proxy-resp.toml" <<EOF
[listen]
resp = "127.0.0.1:$RP_RESP"
metrics = "127.0.0.1:$(free_port)"

[[nodes]]
name = "rb1"
address = "127.0.0.1:$RB1"
protocol = "resp"

[[nodes]]
name = "rb2"
address = "127.0.0.1:$RB2"
protocol = "resp"
EOF
cat >"$WORK/ringcache-proxy-mc.toml" <<EOF
[listen]
memcache = "127.0.0.1:$RP_MC"
metrics = "127.0.0.1:$(free_port)"

[[nodes]]
name = "mb1"
address = "127.0.0.1:$MB1"
protocol = "memcache"

[[nodes]]
name = "mb2"
address = "127.0.0.1:$MB2"
protocol = "memcache"
EOF
start rcproxy_resp "$RINGCACHE" --config "$WORK/ringcache-proxy-resp.toml"
start rcproxy_mc "$RINGCACHE" --config "$WORK/ringcache-proxy-mc.toml"
# The floor: answers every request without storing anything (see benches/floor/server.rs).
FL_RESP=$(free_port); start floor_resp "$FLOOR" --addr "127.0.0.1:$FL_RESP" --protocol resp
FL_MC=$(free_port); start floor_mc "$FLOOR" --addr "127.0.0.1:$FL_MC" --protocol memcache
for p in $REDIS $RB1 $RB2 $MC $MB1 $MB2 $TWR $TWM $RC_RESP $RC_MC $RP_RESP $RP_MC $FL_RESP $FL_MC; do
  wait_port "$p"
done

# --- workloads -----------------------------------------------------------------------------------
ROWS="$WORK/rows.tsv"
: >"$ROWS"
run_load() { # run_load WORKLOAD TARGET PROTOCOL PORT [extra args]
  local workload=$1 target=$2 protocol=$3 port=$4
  shift 4
  local json
  json=$("${LOAD_PIN[@]}" "$LOAD" --protocol "$protocol" --addr "127.0.0.1:$port" \
    --duration "$DURATION" --keys 100000 --value-size 100 --json "$@" | tail -n1)
  echo "$workload $target: $json" >&2
  python3 - "$workload" "$target" "$json" >>"$ROWS" <<'PY'
import json, sys
w, t, j = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(f"{w}\t{t}\t{j['throughput']}\t{j['p50_us']}\t{j['p99_us']}\t{j['errors']}\t{j['hit_ratio']}")
PY
}
run_redis_benchmark() { # run_redis_benchmark TARGET PORT PIPELINE
  local target=$1 port=$2 p=$3 test rps
  while IFS=, read -r test rps _; do
    test=${test//\"/}; rps=${rps//\"/}
    echo "redis-benchmark -P $p $test $target: $rps" >&2
    printf 'redis-benchmark %s -P %s -c 50\t%s\t%s\t-\t-\t-\t-\n' "$test" "$p" "$target" "$rps" >>"$ROWS"
  done < <("${LOAD_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -t get,set -n 200000 -c 50 -P "$p" -d 100 -r 100000 --csv 2>/dev/null | tail -n +2)
}

FLOOR_LABEL="floor (stores nothing)"
for p in 1 16; do
  w="RESP GET/SET 90/10, 50 conns, pipeline $p"
  for _ in $(seq 1 "$ROUNDS"); do
    run_load "$w" redis-server resp "$REDIS" --pipeline "$p"
    run_load "$w" "twemproxy+2 redis" resp "$TWR" --pipeline "$p"
    run_load "$w" "ringcache+2 redis" resp "$RP_RESP" --pipeline "$p"
    run_load "$w" "ringcache (2 nodes)" resp "$RC_RESP" --pipeline "$p"
    run_load "$w" "$FLOOR_LABEL" resp "$FL_RESP" --pipeline "$p"
  done
done
w="memcached get/set 90/10, 50 conns"
for _ in $(seq 1 "$ROUNDS"); do
  run_load "$w" "memcached -t 2" memcache "$MC"
  run_load "$w" "twemproxy+2 memcached" memcache "$TWM"
  run_load "$w" "ringcache+2 memcached" memcache "$RP_MC"
  run_load "$w" "ringcache (2 nodes)" memcache "$RC_MC"
  run_load "$w" "$FLOOR_LABEL" memcache "$FL_MC"
done
w="memcached 10-key multi-get, 50 conns"
for _ in $(seq 1 "$ROUNDS"); do
  run_load "$w" "memcached -t 2" memcache "$MC" --get-ratio 1 --mget 10
  run_load "$w" "twemproxy+2 memcached" memcache "$TWM" --get-ratio 1 --mget 10
  run_load "$w" "ringcache+2 memcached" memcache "$RP_MC" --get-ratio 1 --mget 10
  run_load "$w" "ringcache (2 nodes)" memcache "$RC_MC" --get-ratio 1 --mget 10
  run_load "$w" "$FLOOR_LABEL" memcache "$FL_MC" --get-ratio 1 --mget 10
done
for p in 1 16; do
  for _ in $(seq 1 "$ROUNDS"); do
    run_redis_benchmark redis-server "$REDIS" "$p"
    run_redis_benchmark "twemproxy+2 redis" "$TWR" "$p"
    run_redis_benchmark "ringcache (2 nodes)" "$RC_RESP" "$p"
  done
done

# --- memory per item: 1M items of 16-byte keys and 100-byte values, as resident growth ---------
MEM="$WORK/mem.tsv"
: >"$MEM"
mem_row() { # mem_row NAME PID PROTOCOL PORT
  local name=$1 pid=$2 protocol=$3 port=$4 before after
  before=$(rss_kb "$pid")
  "${LOAD_PIN[@]}" "$LOAD" --protocol "$protocol" --addr "127.0.0.1:$port" --keys 1000000 \
    --value-size 100 --fill-only >/dev/null
  after=$(rss_kb "$pid")
  echo "memory $name: $before kB -> $after kB" >&2
  printf '%s\t%s\t%s\n' "$name" "$before" "$after" >>"$MEM"
}
# Fresh servers so that earlier workloads do not count.
MEMRC=$(free_port)
cat >"$WORK/ringcache-mem.toml" <<EOF
[listen]
memcache = "127.0.0.1:$MEMRC"

[[nodes]]
name = "cache-a"
max_memory = "1GiB"

[[nodes]]
name = "cache-b"
max_memory = "1GiB"
EOF
start memrc "$RINGCACHE" --config "$WORK/ringcache-mem.toml"
MEMMC=$(free_port); start memmc memcached -l 127.0.0.1 -p "$MEMMC" -t 2 -m 2048 -U 0 -u root
MEMRD=$(free_port); start memrd redis-server --port "$MEMRD" --bind 127.0.0.1 --save "" --appendonly no
for p in $MEMRC $MEMMC $MEMRD; do wait_port "$p"; done
# shellcheck disable=SC2154 # PID_* are set by start via eval
mem_row "ringcache (2 nodes)" "$PID_memrc" memcache "$MEMRC"
# shellcheck disable=SC2154
mem_row "memcached -t 2" "$PID_memmc" memcache "$MEMMC"
# shellcheck disable=SC2154
mem_row "redis-server" "$PID_memrd" resp "$MEMRD"

# --- report --------------------------------------------------------------------------------------
python3 - "$ROWS" "$MEM" "$OUT" "$DURATION" "$PINNING" "$ROUNDS" <<'PY'
import platform, subprocess, sys, datetime, statistics
rows_path, mem_path, out, duration, pinning, rounds = sys.argv[1:7]
runs = [l.rstrip("\n").split("\t") for l in open(rows_path) if l.strip()]
mem = [l.rstrip("\n").split("\t") for l in open(mem_path) if l.strip()]
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
mem_total = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.split("\n")[0].strip()
    except Exception:
        return "?"
lines = [
    "# Benchmarks",
    "",
    f"Produced by `benches/compare.sh` on {datetime.date.today()}: {duration} s per workload and "
    f"target, {rounds} round(s) over all targets in turn; each row is the median over the rounds "
    "(ops/s, p50 and p99 each), with the lowest and highest throughput seen.",
    "",
    f"- Machine: {cpu()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, "
    f"{int(mem_total) // 1024} MiB RAM, Linux {platform.release()}",
    f"- Pinning: {pinning}",
    f"- Peers: {version(['redis-server', '--version'])}; {version(['memcached', '-V'])}; twemproxy (nutcracker) from Debian",
    "- Load: `cargo bench --bench load` (tokio, HDR histogram), 100k keys of 16 bytes, 100-byte values, "
    "uniform keys, every key stored before measuring; plus `redis-benchmark -c 50 -d 100 -r 100000`.",
    "- Ratio: throughput relative to the first target of the same workload (redis-server or memcached).",
    "- Floor: `cargo bench --bench floor`, a one-thread epoll server that answers every request "
    "(every GET a hit) without storing anything, one read and one write per wake-up of a "
    "connection: the most any server can do here, as the kernel's cost of moving the requests "
    "and replies bounds it.",
    "",
    "| workload | target | ops/s (median) | min–max | p50 µs | p99 µs | errors | hit ratio | ratio |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
]
groups = {}
for w, t, thr, p50, p99, err, hit in runs:
    groups.setdefault((w, t), []).append((float(thr), p50, p99, err, hit))
def med(values):
    nums = [float(v) for v in values if v != "-"]
    return f"{statistics.median(nums):.0f}" if nums else "-"
ref = {}
for (w, t), rs in groups.items():
    thr = statistics.median(r[0] for r in rs)
    ref.setdefault(w, thr)
    ratio = f"{thr / ref[w]:.2f}x" if ref[w] else "-"
    span = f"{min(r[0] for r in rs):,.0f}–{max(r[0] for r in rs):,.0f}"
    errors = sum(int(r[3]) for r in rs if r[3] != "-") if any(r[3] != "-" for r in rs) else "-"
    hits = med(r[4] for r in rs) if rs[0][4] == "-" else f"{statistics.median(float(r[4]) for r in rs):.4f}"
    lines.append(
        f"| {w} | {t} | {thr:,.0f} | {span} | {med(r[1] for r in rs)} | {med(r[2] for r in rs)} "
        f"| {errors} | {hits} | {ratio} |"
    )
lines += [
    "",
    "## Memory per item",
    "",
    "1M items (16-byte keys, 100-byte values) stored into a fresh server; resident memory growth / 1M.",
    "",
    "| server | RSS before (MiB) | RSS after (MiB) | bytes/item |",
    "|---|---:|---:|---:|",
]
for name, before, after in mem:
    b, a = int(before), int(after)
    lines.append(f"| {name} | {b / 1024:.1f} | {a / 1024:.1f} | {(a - b) * 1024 / 1_000_000:.1f} |")
# Sections written by hand (a "## ... (by hand ...)" heading, and everything after the first one)
# are kept from the file being replaced.
kept = []
try:
    old = open(out).read().split("\n")
    start = next((i for i, l in enumerate(old) if l.startswith("## ") and "(by hand" in l), None)
    if start is not None:
        kept = [""] + old[start:]
except FileNotFoundError:
    pass
open(out, "w").write("\n".join(lines + kept).rstrip("\n") + "\n")
print("\n".join(lines))
PY
