#!/usr/bin/env python3
"""The lab's link shaper: a TCP relay between the controller and each host's sshd.

The kernel here has no netem, so delay and rate are applied in user space. The lab's nft
rule sends the controller's connections to HOST:22 here (the relay's own connections carry a
mark the rule skips). Each direction of each connection is a reader that stamps what it
reads with the time it may leave (now + delay) and a writer that sends it no earlier than
that and no faster than the direction's token bucket. With a shared uplink every host's
connections draw on the same two buckets, as one link from the controller would.

Usage: shaper.py CONFIG.json   (written by `Lab::shape`; see crates/lab/src/shape.rs)
Counters (bytes up and down per host) are rewritten to CONFIG's "counters" path.
"""
import json
import os
import socket
import sys
import threading
import time

MARK = 0x5A
CHUNK = 256 * 1024
QUEUE_LIMIT = 32 << 20


class Bucket:
    """A link direction: a chunk starts when it is due and the link is free."""

    def __init__(self, bytes_per_s):
        self.rate = bytes_per_s
        self.free_at = 0.0
        self.lock = threading.Lock()

    def start(self, due, size):
        if not self.rate:
            return due
        with self.lock:
            start = max(due, self.free_at)
            self.free_at = start + size / self.rate
            return start


class Counter:
    def __init__(self):
        self.up = 0
        self.down = 0


def pipe(src, dst, delay, bucket, count, attr, done):
    queue = []
    cond = threading.Condition()
    state = {"queued": 0, "closed": False}

    def reader():
        try:
            while True:
                data = src.recv(CHUNK)
                with cond:
                    while state["queued"] > QUEUE_LIMIT:
                        cond.wait()
                    queue.append((time.monotonic() + delay, data))
                    state["queued"] += len(data)
                    cond.notify_all()
                if not data:
                    return
        except OSError:
            with cond:
                queue.append((time.monotonic(), b""))
                cond.notify_all()

    threading.Thread(target=reader, daemon=True).start()
    try:
        while True:
            with cond:
                while not queue:
                    cond.wait()
                due, data = queue.pop(0)
                state["queued"] -= len(data)
                cond.notify_all()
            if not data:
                dst.shutdown(socket.SHUT_WR)
                break
            start = bucket.start(due, len(data))
            wait = start - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            dst.sendall(data)
            setattr(count, attr, getattr(count, attr) + len(data))
    except OSError:
        pass
    done()


def serve(listener, target, delay, up, down, count):
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_MARK", 36), MARK)
            upstream.connect(target)
        except OSError:
            client.close()
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        finished = []
        lock = threading.Lock()

        def done(client=client, upstream=upstream, finished=finished, lock=lock):
            with lock:
                finished.append(1)
                if len(finished) == 2:
                    client.close()
                    upstream.close()

        threading.Thread(target=pipe, args=(client, upstream, delay, up, count, "up", done), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client, delay, down, count, "down", done), daemon=True).start()


def main():
    config = json.load(open(sys.argv[1]))
    with open(config["pid_file"], "w") as f:
        f.write(str(os.getpid()))
    delay = config["delay_ms"] / 1000.0
    up_rate = config["up_bytes_per_s"]
    down_rate = config["down_bytes_per_s"]
    shared = (Bucket(up_rate), Bucket(down_rate))
    counters = {}
    for link in config["links"]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((link["listen"], link["port"]))
        listener.listen(128)
        up, down = shared if config["shared_uplink"] else (Bucket(up_rate), Bucket(down_rate))
        count = counters.setdefault(link["host"], Counter())
        target = (link["target"], link["target_port"])
        threading.Thread(target=serve, args=(listener, target, delay, up, down, count), daemon=True).start()
    with open(config["ready_file"], "w") as f:
        f.write("ready")
    path = config["counters"]
    while True:
        data = {h: {"up": c.up, "down": c.down} for h, c in counters.items()}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
