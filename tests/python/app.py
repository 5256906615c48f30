"""An application's everyday use of redis-py, run against ringcache.

Usage: app.py PORT. Prints "ok <step>" per step; any failure raises (exit status 1).
"""

import sys
import threading
import time

import redis
from redis.lock import Lock


def step(name):
    print("ok", name, flush=True)


def main(port):
    r = redis.Redis(port=port, decode_responses=True)
    r.flushall()

    r.set("greeting", "hello", ex=60)
    assert r.get("greeting") == "hello"
    assert 0 < r.ttl("greeting") <= 60
    step("strings")

    # The default pipeline is a MULTI/EXEC transaction.
    with r.pipeline() as p:
        p.incr("counter").incr("counter").get("counter")
        assert p.execute() == [1, 2, "2"]
    step("pipeline (MULTI/EXEC)")

    # An optimistic transaction: WATCH, read, MULTI, write, EXEC, retried on conflict.
    def double(pipe):
        value = int(pipe.get("counter"))
        pipe.multi()
        pipe.set("counter", value * 2)

    r.transaction(double, "counter")
    assert r.get("counter") == "4"
    step("transaction (WATCH)")

    # Lock: acquire, extend and release are Lua scripts.
    lock = Lock(r, "resource", timeout=5)
    assert lock.acquire(blocking=False)
    assert not Lock(r, "resource", timeout=5).acquire(blocking=False)
    assert lock.extend(5)
    lock.release()
    assert Lock(r, "resource", timeout=5).acquire(blocking=False)
    step("Lock (Lua scripts)")

    script = r.register_script(
        "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) return v * 10"
    )
    assert script(keys=["scripted"], args=[4]) == 40
    assert script(keys=["scripted"], args=[1]) == 50
    step("register_script (EVALSHA)")

    p = r.pubsub()
    p.subscribe("news")
    assert p.get_message(timeout=1)["type"] == "subscribe"
    assert r.publish("news", "flash") == 1
    msg = p.get_message(timeout=1)
    assert msg is not None and msg["data"] == "flash", msg
    p.psubscribe("ne*")
    assert p.get_message(timeout=1)["type"] == "psubscribe"
    assert r.publish("news", "again") == 2
    got = {p.get_message(timeout=1)["type"], p.get_message(timeout=1)["type"]}
    assert got == {"message", "pmessage"}, got
    p.close()
    step("pubsub")

    r.setbit("visits", 7, 1)
    r.setbit("visits", 100, 1)
    assert r.bitcount("visits") == 2
    assert r.getbit("visits", 7) == 1
    step("bitmaps")

    def push_later():
        time.sleep(0.2)
        redis.Redis(port=port).rpush("queue", "work")

    threading.Thread(target=push_later).start()
    assert r.blpop(["queue"], timeout=5) == ("queue", "work")
    step("blocking pop")


if __name__ == "__main__":
    main(int(sys.argv[1]))
