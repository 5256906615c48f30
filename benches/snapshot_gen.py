#!/usr/bin/env python3
"""Writes the Redis commands of a snapshot benchmark data set as RESP on stdout, for
`redis-cli --pipe` (benches/snapshot.sh). Deterministic (fixed seed).

  strings  1,000,000 strings of 100 bytes (`key:N`)
  mix      200k strings of 10-200 bytes; 20k each of hashes, lists, sets, int-sets and sorted
           sets with 10 elements; 2k lists and 2k hashes with 300 elements (about 304k keys)
"""
import random
import sys

ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


def main() -> None:
    which = sys.argv[1]
    rnd = random.Random(17)
    out = sys.stdout.buffer
    buf = []

    def blob(n: int) -> bytes:
        return bytes(rnd.choices(ALPHABET, k=n))

    def cmd(*args: bytes) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        buf.append(b"".join(parts))
        if len(buf) >= 4096:
            out.write(b"".join(buf))
            buf.clear()

    if which == "strings":
        for i in range(1_000_000):
            cmd(b"SET", b"key:%d" % i, blob(100))
    elif which == "mix":
        for i in range(200_000):
            cmd(b"SET", b"str:%d" % i, blob(rnd.randint(10, 200)))
        for i in range(20_000):
            fields = []
            for j in range(10):
                fields += [b"field:%d" % j, blob(rnd.randint(5, 30))]
            cmd(b"HSET", b"hash:%d" % i, *fields)
            cmd(b"RPUSH", b"list:%d" % i, *[blob(rnd.randint(5, 30)) for _ in range(10)])
            cmd(b"SADD", b"set:%d" % i, *[blob(rnd.randint(5, 30)) for _ in range(10)])
            cmd(b"SADD", b"intset:%d" % i, *[b"%d" % rnd.randint(0, 1 << 40) for _ in range(10)])
            zargs = []
            for _ in range(10):
                zargs += [b"%d" % rnd.randint(0, 100_000), blob(rnd.randint(5, 30))]
            cmd(b"ZADD", b"zset:%d" % i, *zargs)
        for i in range(2_000):
            cmd(b"RPUSH", b"biglist:%d" % i, *[blob(rnd.randint(5, 30)) for _ in range(300)])
            fields = []
            for j in range(300):
                fields += [b"field:%d" % j, blob(rnd.randint(5, 30))]
            cmd(b"HSET", b"bighash:%d" % i, *fields)
    else:
        sys.exit(f"unknown data set {which!r}: strings or mix")
    out.write(b"".join(buf))


if __name__ == "__main__":
    main()
