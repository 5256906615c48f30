#!/usr/bin/env python3
"""Golden placement vectors from a real nutcracker (twemproxy), for tests/twemproxy.rs.

How they are made: five memcached servers start on free loopback ports (one of them on
127.0.0.2:11211, the port twemproxy leaves out of an unnamed server's identity), and one
nutcracker serves one pool per (distribution, hash) pair over those five servers, with
weights 1, 2, 1, 3, 1, three servers unnamed and two named. For each pool in turn every
memcached is flushed, every key is `set` through the pool's nutcracker port, and then each
memcached is asked directly which keys it holds: the key's server is the one that has it (a
key found on no server or on two stops the run). `random` is not recorded: twemproxy picks a
server at random per request.

Output: one file per pool, `<distribution>-<hash>[-tag].txt`:

    # comments
    distribution ketama
    hash fnv1a_64
    hash_tag {}                 (only when the pool has one)
    server 127.0.0.1:40001:1    (the server line exactly as in nutcracker.yml, in order)
    key 6b65793a30 2            (hex of the key, index of the server that holds it)

Run from anywhere: `python3 tests/data/twemproxy/generate.py` (needs nutcracker and
memcached: Debian packages nutcracker, memcached). It rewrites the *.txt files beside it.
"""

import os
import random
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HASHES = [
    "one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64", "fnv1_32",
    "fnv1a_32", "hsieh", "murmur", "jenkins",
]
DISTRIBUTIONS = ["ketama", "modula"]
# (distribution, hash, hash_tag): extra pools that check the tag rule with other hashes.
TAGGED = [("ketama", "fnv1a_64", "{}"), ("modula", "murmur", "$$")]
WEIGHTS = [1, 2, 1, 3, 1]
NAMES = [None, None, None, "cache-d", "cache-e"]


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(host, port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on {host}:{port}")


def keys():
    """About 1,500 keys: counters, random printable ASCII of every length class, non-ASCII
    UTF-8 (bytes >= 0x80, which twemproxy sign-extends in several hashes), hash-tagged keys,
    and long keys up to memcached's 250 bytes."""
    rng = random.Random(18)
    out = [f"key:{i}".encode() for i in range(400)]
    printable = [chr(c) for c in range(0x21, 0x7F)]
    for i in range(400):
        n = 1 + i % 40
        out.append("".join(rng.choice(printable) for _ in range(n)).encode())
    words = ["clé", "ключ", "键", "Ωμέγα", "naïve", "ü", "日本語のキー"]
    for i in range(300):
        out.append(f"{words[i % len(words)]}:{i}".encode())
    for i in range(200):
        out.append(f"{{user{i % 37}}}:field{i}".encode())
        out.append(f"${i % 23}$:x{i}".encode())
    for i in range(100):
        n = 60 + (i * 37) % 191
        out.append("".join(rng.choice(printable) for _ in range(n)).encode())
    seen = set()
    unique = []
    for k in out:
        if k not in seen and len(k) <= 250:
            seen.add(k)
            unique.append(k)
    return unique


def read_until(sock, buf, terminator):
    while terminator not in buf:
        chunk = sock.recv(1 << 16)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
    return buf


def set_all(port, keys, value):
    sock = socket.create_connection(("127.0.0.1", port))
    req = b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value) for k in keys)
    sock.sendall(req)
    buf = b""
    while buf.count(b"\r\n") < len(keys):
        chunk = sock.recv(1 << 16)
        if not chunk:
            sys.exit("nutcracker closed the connection")
        buf += chunk
    sock.close()
    replies = buf.split(b"\r\n")[: len(keys)]
    bad = [r for r in replies if r != b"STORED"]
    if bad:
        sys.exit(f"set through nutcracker failed: {bad[:3]}")


def holdings(host, port, keys):
    """The subset of `keys` that the memcached at host:port holds."""
    sock = socket.create_connection((host, port))
    have = set()
    for i in range(0, len(keys), 100):
        batch = keys[i : i + 100]
        sock.sendall(b"get " + b" ".join(batch) + b"\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                sys.exit(f"memcached {host}:{port} closed the connection")
            buf += chunk
        for line in buf.split(b"\r\n"):
            if line.startswith(b"VALUE "):
                have.add(line.split(b" ")[1])
    sock.close()
    return have


def flush(host, port):
    sock = socket.create_connection((host, port))
    sock.sendall(b"flush_all\r\n")
    read_until(sock, b"", b"OK\r\n")
    sock.close()


def main():
    ran = subprocess.run(["nutcracker", "--version"], capture_output=True, text=True)
    version = (ran.stdout + ran.stderr).strip().splitlines()[0].removeprefix("This is ")
    procs = []
    tmp = tempfile.mkdtemp(prefix="twem-golden-")
    try:
        hosts = ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.1"]
        ports = [free_port(h) if h == "127.0.0.1" else 11211 for h in hosts]
        for host, port in zip(hosts, ports):
            p = subprocess.Popen(
                ["memcached", "-u", "root", "-l", host, "-p", str(port), "-U", "0",
                 "-m", "64", "-t", "1"]
            )
            procs.append(p)
            wait_port(host, port, p, f"memcached {host}:{port}")
        servers = []
        for host, port, weight, name in zip(hosts, ports, WEIGHTS, NAMES):
            line = f"{host}:{port}:{weight}"
            servers.append(line if name is None else f"{line} {name}")

        pools = [(d, h, None) for d in DISTRIBUTIONS for h in HASHES] + TAGGED
        listen = {}
        conf = []
        for dist, hash_, tag in pools:
            name = f"{dist}_{hash_}" + ("_tag" if tag else "")
            listen[name] = free_port()
            conf.append(f"{name}:")
            conf.append(f"  listen: 127.0.0.1:{listen[name]}")
            conf.append(f"  hash: {hash_}")
            conf.append(f"  distribution: {dist}")
            if tag:
                conf.append(f'  hash_tag: "{tag}"')
            conf.append("  auto_eject_hosts: false")
            conf.append("  timeout: 2000")
            conf.append("  servers:")
            conf.extend(f"   - {s}" for s in servers)
        conf_path = os.path.join(tmp, "nutcracker.yml")
        with open(conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        nut = subprocess.Popen(
            ["nutcracker", "-c", conf_path, "-s", str(free_port()), "-o",
             os.path.join(tmp, "nutcracker.log"), "-p", os.path.join(tmp, "pid")]
        )
        procs.append(nut)
        for port in listen.values():
            wait_port("127.0.0.1", port, nut, "nutcracker")

        all_keys = keys()
        for dist, hash_, tag in pools:
            name = f"{dist}_{hash_}" + ("_tag" if tag else "")
            for host, port in zip(hosts, ports):
                flush(host, port)
            set_all(listen[name], all_keys, name.encode())
            owner = {}
            for index, (host, port) in enumerate(zip(hosts, ports)):
                for k in holdings(host, port, all_keys):
                    if k in owner:
                        sys.exit(f"{name}: key {k!r} on two servers")
                    owner[k] = index
            missing = [k for k in all_keys if k not in owner]
            if missing:
                sys.exit(f"{name}: {len(missing)} keys on no server, e.g. {missing[:3]}")
            used = sorted(set(owner.values()))
            out = [
                f"# Placement by {version} (Debian package nutcracker), made by generate.py",
                "# beside this file: each key was set through nutcracker and found on exactly",
                f"# one of the memcached servers below. {len(all_keys)} keys; servers used: {used}.",
                f"distribution {dist}",
                f"hash {hash_}",
            ]
            if tag:
                out.append(f"hash_tag {tag}")
            out.extend(f"server {s}" for s in servers)
            out.extend(f"key {k.hex()} {owner[k]}" for k in all_keys)
            file = f"{dist}-{hash_}" + ("-tag" if tag else "") + ".txt"
            with open(os.path.join(HERE, file), "w") as f:
                f.write("\n".join(out) + "\n")
            print(f"{file}: {len(all_keys)} keys, servers used {used}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    main()
