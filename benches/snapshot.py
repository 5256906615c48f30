#!/usr/bin/env python3
"""Snapshot load time, ringcache against redis-server, on the same RDB files, in one run.

    benches/snapshot.py                       # both data sets, 3 rounds each
    ROUNDS=5 benches/snapshot.py strings      # one data set
    RINGCACHE=target/release/ringcache DATA=/tmp/snapbench benches/snapshot.py

For each data set (see benches/snapshot_gen.py: `strings` = 1M x 100-byte strings, `mix` =
about 304k keys of every type and size), a redis-server (Debian's, 7.0) is filled through
`redis-cli --pipe` and SAVEs its RDB file once (kept in DATA, reused by later runs). Then, in
turn for ROUNDS rounds, each server is started on that file and timed until it is ready:
redis-server until PING answers PONG (it answers -LOADING before), ringcache until its ready
line (printed after the load). Each server's own figure is shown too (redis: "DB loaded from
disk: N seconds"; ringcache: "snapshot loaded ... ms=N"), and the CPU time each used until
ready (/proc/PID/stat), which a busy machine disturbs less than wall time. Needs redis-server and redis-cli;
builds the release binary unless RINGCACHE is set. Not part of the tests (timings are not
assertions): numbers go to BENCHMARKS.md with the command that made them.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DATA = os.environ.get("DATA", os.path.join(tempfile.gettempdir(), "ringcache-snapbench"))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ping(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64)
    except OSError:
        return b""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (less noisy than wall time on a busy
    machine)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_rdb(which: str) -> str:
    """The RDB file redis-server saved for data set `which` (made once)."""
    path = os.path.join(DATA, which, "dump.rdb")
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    port = free_port()
    srv = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", os.path.dirname(path), "--dbfilename", "dump.rdb"],
        stdout=subprocess.DEVNULL)
    try:
        while ping(port) != b"+PONG\r\n":
            time.sleep(0.05)
        gen = subprocess.Popen([sys.executable, os.path.join(HERE, "snapshot_gen.py"), which],
                               stdout=subprocess.PIPE)
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=gen.stdout, check=True,
                       stdout=subprocess.DEVNULL)
        gen.wait()
        keys = subprocess.run(["redis-cli", "-p", str(port), "DBSIZE"], check=True,
                              capture_output=True, text=True).stdout.strip()
        subprocess.run(["redis-cli", "-p", str(port), "SAVE"], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"{which}: {keys} keys, {os.path.getsize(path) >> 20} MiB RDB at {path}")
    finally:
        srv.terminate()
        srv.wait()
    return path


def time_redis(rdb: str) -> tuple[float, float, float]:
    """Seconds until PING answers, redis's own load time, CPU seconds until then."""
    port = free_port()
    log = os.path.join(os.path.dirname(rdb), "redis.log")
    start = time.monotonic()
    srv = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", os.path.dirname(rdb), "--dbfilename", os.path.basename(rdb),
         "--logfile", log])
    try:
        while ping(port) != b"+PONG\r\n":
            time.sleep(0.002)
        ready = time.monotonic() - start
        cpu = cpu_seconds(srv.pid)
    finally:
        srv.terminate()
        srv.wait()
    own = re.findall(r"DB loaded from disk: ([0-9.]+) seconds", open(log).read())
    return ready, float(own[-1]) if own else float("nan"), cpu


def time_ringcache(binary: str, rdb: str) -> tuple[float, float, float]:
    """Seconds until the ready line, ringcache's own load time, CPU seconds until then."""
    work = tempfile.mkdtemp(prefix="snapbench-")
    try:
        config = os.path.join(work, "ringcache.toml")
        with open(config, "w") as f:
            f.write(f'[listen]\nresp = "127.0.0.1:{free_port()}"\n\n'
                    f'[snapshot]\npath = "{rdb}"\nsave = ""\non_shutdown = false\n\n')
            for name in ("cache-a", "cache-b", "cache-c", "cache-d"):
                f.write(f'[[nodes]]\nname = "{name}"\nmax_memory = "2GiB"\n\n')
        start = time.monotonic()
        srv = subprocess.Popen([binary, "--config", config], stdout=subprocess.PIPE,
                               stderr=open(os.path.join(work, "log"), "w"),
                               env={**os.environ, "NO_COLOR": "1"})
        try:
            line = srv.stdout.readline()
            ready = time.monotonic() - start
            cpu = cpu_seconds(srv.pid)
            if not line.startswith(b"ringcache ready"):
                sys.exit(f"ringcache did not start: {open(os.path.join(work, 'log')).read()}")
        finally:
            srv.terminate()
            srv.wait()
        own = re.findall(r"snapshot loaded.* ms=(\d+)", open(os.path.join(work, "log")).read())
        return ready, int(own[-1]) / 1000 if own else float("nan"), cpu
    finally:
        shutil.rmtree(work)


def main() -> None:
    for tool in ("redis-server", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (Debian: apt-get install redis-server)")
    binary = os.environ.get("RINGCACHE")
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "ringcache"],
                       cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        binary = os.path.join(target, "release", "ringcache")
    sets = sys.argv[1:] or ["strings", "mix"]
    print("| data set | server | ready (s) | own load figure (s) | CPU until ready (s) |")
    print("|---|---|---|---|---|")
    for which in sets:
        rdb = make_rdb(which)
        results = {"redis-server": [], "ringcache": []}
        for _ in range(ROUNDS):
            results["redis-server"].append(time_redis(rdb))
            results["ringcache"].append(time_ringcache(binary, rdb))
        for server, runs in results.items():
            ready = " / ".join(f"{r:.2f}" for r, _, _ in runs)
            own = " / ".join(f"{o:.2f}" for _, o, _ in runs)
            cpu = " / ".join(f"{c:.2f}" for _, _, c in runs)
            print(f"| {which} | {server} | {ready} | {own} | {cpu} |", flush=True)

        def med(server: str, i: int) -> float:
            return sorted(r[i] for r in results[server])[len(results[server]) // 2]

        ratio = [med("ringcache", i) / med("redis-server", i) for i in (0, 2)]
        print(f"| {which} | ratio of medians | {ratio[0]:.2f}x | | {ratio[1]:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
