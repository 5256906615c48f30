#!/usr/bin/env python3
"""Snapshot load and save time, ringcache against redis-server, on the same RDB files.

    benches/snapshot.py                       # both data sets, 3 rounds each
    ROUNDS=5 benches/snapshot.py strings      # one data set
    RINGCACHE=target/release/ringcache DATA=/tmp/snapbench benches/snapshot.py
    SAVE=0 benches/snapshot.py                # load only (a save needs the file's size free)

For each data set (see benches/snapshot_gen.py: `strings` = 1M x 100-byte strings, `mix` =
about 304k keys of every type and size), a redis-server (Debian's, 7.0) is filled through
`redis-cli --pipe` and SAVEs its RDB file once (kept in DATA, reused by later runs). Then, in
turn for ROUNDS rounds, each server is started on that file and timed until it is ready:
redis-server until PING answers PONG (it answers -LOADING before), ringcache until its ready
line (printed after the load). Then each server SAVEs what it loaded (timed until +OK; the
size of the file it wrote is shown), in a scratch directory that holds the data set's file as
a hard link (the save renames its file over the link: the data set stays). Each server's own
load figure is shown too (redis: "DB loaded from disk: N seconds"; ringcache: "snapshot
loaded ... ms=N"), and the CPU time each used until ready (/proc/PID/stat), which a busy
machine disturbs less than wall time. Needs redis-server and redis-cli; builds the release
binary unless RINGCACHE is set. Not part of the tests (timings are not assertions): numbers go
to BENCHMARKS.md with the command that made them.
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


def save(port: int) -> float:
    """Seconds a SAVE takes (until +OK); NaN with SAVE=0 in the environment (no disk room)."""
    if os.environ.get("SAVE") == "0":
        return float("nan")
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
        s.sendall(b"SAVE\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(64)
            if not chunk:
                break
            reply += chunk
    if reply != b"+OK\r\n":
        sys.exit(f"SAVE answered {reply!r}")
    return time.monotonic() - start


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


def scratch(rdb: str) -> str:
    """A scratch directory holding `rdb` as a hard link (copy if it cannot): a SAVE there
    renames its new file over the link, and the data set stays as it was."""
    work = tempfile.mkdtemp(prefix="snapbench-", dir=os.path.dirname(rdb))
    try:
        os.link(rdb, os.path.join(work, "dump.rdb"))
    except OSError:
        shutil.copy(rdb, os.path.join(work, "dump.rdb"))
    return work


def time_redis(rdb: str) -> tuple[float, float, float, float, int]:
    """Seconds until PING answers, redis's own load time, CPU seconds until then, then the
    seconds a SAVE takes and the size of the file it wrote."""
    port = free_port()
    work = scratch(rdb)
    log = os.path.join(work, "redis.log")
    try:
        start = time.monotonic()
        srv = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", work, "--dbfilename", "dump.rdb", "--logfile", log])
        try:
            while ping(port) != b"+PONG\r\n":
                time.sleep(0.002)
            ready = time.monotonic() - start
            cpu = cpu_seconds(srv.pid)
            saved = save(port)
            size = os.path.getsize(os.path.join(work, "dump.rdb")) if saved == saved else 0
        finally:
            srv.terminate()
            srv.wait()
        own = re.findall(r"DB loaded from disk: ([0-9.]+) seconds", open(log).read())
        return ready, float(own[-1]) if own else float("nan"), cpu, saved, size
    finally:
        shutil.rmtree(work)


def time_ringcache(binary: str, rdb: str) -> tuple[float, float, float, float, int]:
    """Seconds until the ready line, ringcache's own load time, CPU seconds until then, then
    the seconds a SAVE takes and the size of the file it wrote."""
    work = scratch(rdb)
    try:
        config = os.path.join(work, "ringcache.toml")
        port = free_port()
        with open(config, "w") as f:
            f.write(f'[listen]\nresp = "127.0.0.1:{port}"\n\n'
                    f'[snapshot]\npath = "dump.rdb"\nsave = ""\non_shutdown = false\n\n')
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
            saved = save(port)
            size = os.path.getsize(os.path.join(work, "dump.rdb")) if saved == saved else 0
        finally:
            srv.terminate()
            srv.wait()
        own = re.findall(r"snapshot loaded.* ms=(\d+)", open(os.path.join(work, "log")).read())
        return ready, int(own[-1]) / 1000 if own else float("nan"), cpu, saved, size
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
    print("| data set | server | ready (s) | own load figure (s) | CPU until ready (s) "
          "| SAVE (s) | saved file (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for which in sets:
        rdb = make_rdb(which)
        results = {"redis-server": [], "ringcache": []}
        for _ in range(ROUNDS):
            results["redis-server"].append(time_redis(rdb))
            results["ringcache"].append(time_ringcache(binary, rdb))
        for server, runs in results.items():
            col = lambda i: " / ".join(f"{r[i]:.2f}" for r in runs)
            mib = runs[-1][4] / (1 << 20)
            print(f"| {which} | {server} | {col(0)} | {col(1)} | {col(2)} | {col(3)} "
                  f"| {mib:.1f} |", flush=True)

        def med(server: str, i: int) -> float:
            return sorted(r[i] for r in results[server])[len(results[server]) // 2]

        def ratio(i: int) -> str:
            ours, theirs = med("ringcache", i), med("redis-server", i)
            return f"{ours / theirs:.2f}x" if theirs > 0 else "-"

        print(f"| {which} | ratio of medians | {ratio(0)} | | {ratio(2)} | {ratio(3)} "
              f"| {ratio(4)} |", flush=True)


if __name__ == "__main__":
    main()
