#!/usr/bin/env python3
"""`telepty list` across many peers (issue 13's targets), one run, one table.

    python3 scripts/bench-peers.py [--bin target/release/telepty] [--peers 20] [--sessions 50]

Starts PEERS daemons on loopback ports, each in its own throwaway HOME with SESSIONS `cat`
sessions, and a client HOME whose config.toml names them all as peers (each with its token).
Then times `telepty list --json` (n runs, median and max):
  1. the 20 peers, all up                           target <= 300 ms
  2. plus 5 dead peers (a port nothing listens on)
     and 5 hung peers (a listener that accepts and never answers)   target <= 3 s
     (the first list, then the next ones, which remember those peers as down)
  3. a local command (`list` of the client's own daemon alone, peers configured) next to
     the same with no peers configured: peers must not slow it
Everything it starts is stopped on exit. Needs nothing but python3 and the binary.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(port, method, path, body=None, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if body is not None:
        req.data = json.dumps(body).encode()
    if token:
        req.add_header("x-telepty-token", token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


class Daemon:
    def __init__(self, binary, root, name):
        self.home = os.path.join(root, name)
        os.makedirs(self.home)
        self.port = free_port()
        env = dict(os.environ, HOME=self.home, TELEPTY_PORT=str(self.port), NO_COLOR="1")
        env.pop("TELEPTY_HOST", None)
        self.log = open(os.path.join(self.home, "daemon.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "daemon", "--port", str(self.port)],
            env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.time() + 30
        while True:
            try:
                http(self.port, "GET", "/api/health")
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit(f"daemon {name} did not start")
                time.sleep(0.05)
        with open(os.path.join(self.home, ".telepty", "config.json")) as f:
            self.token = json.load(f)["authToken"]

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def hung_listener():
    """A port that accepts connections and never answers: a SIGSTOPped or wedged daemon."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    held = []

    def run():
        while True:
            try:
                c, _ = s.accept()
                held.append(c)
            except OSError:
                return
    threading.Thread(target=run, daemon=True).start()
    return s


def timed(cmd, env, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times.append((time.perf_counter() - t) * 1000)
        if out.returncode not in (0, 1):
            raise SystemExit(f"{cmd}: exit {out.returncode}: {out.stderr}")
    return statistics.median(times), max(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/telepty")
    ap.add_argument("--peers", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("-n", type=int, default=10)
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    root = tempfile.mkdtemp(prefix="telepty-bench-peers.")
    daemons, sockets = [], []
    try:
        client = Daemon(binary, root, "client")
        daemons.append(client)
        t0 = time.time()
        for i in range(a.peers):
            d = Daemon(binary, root, f"peer{i}")
            daemons.append(d)
            for j in range(a.sessions):
                http(d.port, "POST", "/api/sessions/spawn",
                     {"session_id": f"s{j}", "command": "cat"}, d.token)
        http(client.port, "POST", "/api/sessions/spawn",
             {"session_id": "mine", "command": "cat"}, client.token)
        setup = time.time() - t0
        env = dict(os.environ, HOME=client.home, TELEPTY_PORT=str(client.port), NO_COLOR="1")
        cfg_dir = os.path.join(client.home, ".config", "telepty")
        os.makedirs(cfg_dir, exist_ok=True)
        cfg = os.path.join(cfg_dir, "config.toml")

        def write_peers(extra):
            with open(cfg, "w") as f:
                f.write("discover_tailscale = false\n")
                for i, d in enumerate(daemons[1:]):
                    f.write(f'\n[[peers]]\nname = "peer{i}"\nurl = "http://127.0.0.1:{d.port}"\n'
                            f'token = "{d.token}"\n')
                for name, port in extra:
                    f.write(f'\n[[peers]]\nname = "{name}"\nurl = "http://127.0.0.1:{port}"\n'
                            f'token = "x"\n')

        rows = []
        write_peers([])
        med, mx, out = timed([binary, "list", "--json"], env, a.n)
        listed = len(json.loads(out.stdout))
        rows.append((f"list, {a.peers} peers x {a.sessions} sessions ({listed} rows)", med, mx, "<= 300 ms"))
        dead = [("dead%d" % i, free_port()) for i in range(5)]
        hung = []
        for i in range(5):
            s = hung_listener()
            sockets.append(s)
            hung.append(("hung%d" % i, s.getsockname()[1]))
        write_peers(dead + hung)
        med, mx, _ = timed([binary, "list", "--json"], env, 1)
        rows.append((f"list, the same + 5 dead + 5 hung peers, first", med, mx, "<= 3000 ms"))
        med, mx, _ = timed([binary, "list", "--json"], env, max(3, a.n // 3))
        rows.append((f"  the next lists (those peers remembered down for 60 s)", med, mx, "<= 3000 ms"))
        med, mx, _ = timed([binary, "read-screen", "mine"], env, a.n)
        rows.append(("a local command (read-screen of a local id), all those peers configured", med, mx, "= without peers"))
        os.remove(cfg)
        med, mx, _ = timed([binary, "read-screen", "mine"], env, a.n)
        rows.append(("the same local command, no peers configured", med, mx, "-"))
        print(f"# {a.peers} peers x {a.sessions} sessions set up in {setup:.0f} s; "
              f"n={a.n} (1 + {max(3, a.n // 3)} with hung peers); {os.cpu_count()} CPUs")
        print(f"{'measure':<78} {'median':>9} {'max':>9}  target")
        for name, med, mx, target in rows:
            print(f"{name:<78} {med:>7.0f}ms {mx:>7.0f}ms  {target}")
    finally:
        for s in sockets:
            s.close()
        for d in daemons:
            d.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
