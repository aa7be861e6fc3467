#!/usr/bin/env python3
"""The dashboard across machines (issue 13's fleet targets), one run, one table.

    sudo python3 scripts/bench-fleet.py [--bin target/release/telepty] [--panes 16] [--samples 40]

Two peers, each a daemon in its own network namespace joined to this one by a veth pair
(198.18.1.0/30 and 198.18.2.0/30 only; removed on exit), each with PANES `bash` sessions and a
token; the dashboard runs here in a private tmux (240x67) with both as peers, PANES local
sessions of its own, so 3 hosts x PANES panes. Measured:
  * key-to-screen: keys typed into the focused pane (tmux send-keys) until the dashboard's
    screen shows them (tmux capture-pane, polled), for a local pane and a peer's pane in the
    same dashboard, and for a dashboard of PANES local panes alone (`--no-peers`); with every
    other pane idle, then with every other pane printing 20 lines/s.   target <= 100 ms
  * the bytes/s on a peer's veth while its PANES panes are shown idle (both directions, all of
    the dashboard's traffic with that peer: mirrors, bus, heartbeats).   target ~0
Needs root (ip netns), tmux and python3.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

TAG = f"tpf{os.getpid() % 10000}"
PORT = 3848


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def http(url, method="GET", body=None, token=None):
    req = urllib.request.Request(url, method=method)
    if body is not None:
        req.data = json.dumps(body).encode()
    if token:
        req.add_header("x-telepty-token", token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wait(what, pred, timeout=30, pause=0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(pause)


class Peer:
    """A daemon in a namespace of its own, reached at 198.18.K.2 through veth `TAG{K}a`."""

    def __init__(self, binary, root, k, panes):
        self.name = f"host{chr(ord('A') + k)}"
        self.ns, self.veth = f"{TAG}-{k}", f"{TAG}{k}a"
        self.addr = f"198.18.{k}.2"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", f"{TAG}{k}b")
        sh("ip", "link", "set", f"{TAG}{k}b", "netns", self.ns)
        sh("ip", "addr", "add", f"198.18.{k}.1/30", "dev", self.veth)
        sh("ip", "link", "set", self.veth, "up")
        for cmd in (["ip", "addr", "add", f"{self.addr}/30", "dev", f"{TAG}{k}b"],
                    ["ip", "link", "set", f"{TAG}{k}b", "up"], ["ip", "link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", self.ns, *cmd)
        self.home = os.path.join(root, self.name)
        os.makedirs(self.home)
        self.log = open(os.path.join(self.home, "daemon.log"), "w")
        env = {"PATH": os.environ["PATH"], "HOME": self.home, "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "env", "-i", *[f"{k}={v}" for k, v in env.items()],
             binary, "daemon", "--host", "0.0.0.0", "--port", str(PORT)],
            stdout=self.log, stderr=self.log, start_new_session=True)
        cfg = os.path.join(self.home, ".telepty", "config.json")
        wait(f"{self.name}'s token", lambda: os.path.exists(cfg) and os.path.getsize(cfg) > 0)
        self.token = json.load(open(cfg))["authToken"]
        self.base = f"http://{self.addr}:{PORT}"
        wait(f"{self.name} to answer", lambda: self.ok("/api/health"))
        for j in range(panes):
            spawn(self.base, f"s{j}", self.token)

    def ok(self, path):
        try:
            return http(self.base + path, token=self.token) is not None
        except OSError:
            return False

    def bytes(self):
        stat = f"/sys/class/net/{self.veth}/statistics"
        return sum(int(open(f"{stat}/{d}_bytes").read()) for d in ("rx", "tx"))

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        sh("ip", "netns", "del", self.ns, check=False)


def spawn(base, sid, token=None):
    http(f"{base}/api/sessions/spawn", "POST",
         {"session_id": sid, "command": "bash", "args": ["--norc", "--noprofile"],
          "cols": 80, "rows": 24}, token)


def inject(base, sid, text, token=None):
    http(f"{base}/api/sessions/{sid}/inject", "POST", {"prompt": text}, token)


class Dashboard:
    def __init__(self, binary, home, port, args):
        self.sock = f"{TAG}-tui"
        env = f"env -i PATH={os.environ['PATH']} HOME={home} LANG=C.UTF-8 TERM=xterm-256color"
        sh("tmux", "-L", self.sock, "-f", "/dev/null", "new-session", "-d", "-x", "240", "-y",
           "67", f"{env} {binary} tui --port {port} {args}; sleep 600")
        self.base = f"http://127.0.0.1:{port}"

    def screen(self):
        return sh("tmux", "-L", self.sock, "capture-pane", "-p").stdout

    def keys(self, *keys, literal=False):
        sh("tmux", "-L", self.sock, "send-keys", *(["-l"] if literal else []), *keys)

    def focus(self, sid):
        self.keys(":", literal=True)
        wait("the palette", lambda: "command palette" in self.screen())
        self.keys(f"focus {sid}", literal=True)
        self.keys("Enter")
        self.keys("Enter")
        wait(f"typing into {sid}", lambda: f"TYPING {sid}" in self.screen())

    def key_to_screen(self, sid, samples):
        self.focus(sid)
        times = []
        for i in range(samples):
            token = f"k{i}q{os.getpid() % 97}z"
            t = time.perf_counter()
            self.keys(token, literal=True)
            # Polled back to back: each capture-pane takes a few ms.
            wait(f"{token} on screen", lambda: token in self.screen(), timeout=10, pause=0)
            times.append((time.perf_counter() - t) * 1000)
            self.keys("C-u")
            time.sleep(0.05)
        self.keys("C-a")
        return times

    def stop(self):
        sh("tmux", "-L", self.sock, "kill-server", check=False)


def busy_loop():
    return "while :; do echo \"agent line $RANDOM $RANDOM $RANDOM\"; sleep 0.05; done"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/telepty")
    ap.add_argument("--panes", type=int, default=16)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--idle-secs", type=int, default=30)
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    root = tempfile.mkdtemp(prefix="telepty-bench-fleet.")
    peers, dash = [], None
    rows = []
    try:
        home = os.path.join(root, "hostA")
        os.makedirs(os.path.join(home, ".config", "telepty"))
        for k in (1, 2):
            peers.append(Peer(binary, root, k, a.panes))
        with open(os.path.join(home, ".config", "telepty", "config.toml"), "w") as f:
            for p in peers:
                f.write(f'[[peers]]\nname = "{p.name}"\nurl = "http://{p.addr}:{PORT}"\n'
                        f'token = "{p.token}"\n\n')
        port = 3900 + os.getpid() % 50
        n = a.panes

        # Baseline: PANES local panes, no peers.
        dash = Dashboard(binary, home, port, "--no-peers")
        wait("the dashboard", lambda: f"embedded :{port}" in dash.screen())
        for j in range(n):
            spawn(dash.base, f"s{j}")
        wait(f"{n} sessions", lambda: f"{n} sessions" in dash.screen())
        time.sleep(1)
        rows.append((f"{n} local panes alone, idle: a local pane", dash.key_to_screen("s0", a.samples)))
        for j in range(1, n):
            inject(dash.base, f"s{j}", busy_loop())
        time.sleep(2)
        rows.append((f"{n} local panes alone, the others 20 lines/s: a local pane",
                     dash.key_to_screen("s0", a.samples)))
        dash.stop()
        # The sessions live on in their holders; the next dashboard adopts them. Quiet them.
        time.sleep(1)

        dash = Dashboard(binary, home, port, "")
        wait("the fleet dashboard", lambda: f"{3 * n} sessions" in dash.screen(), timeout=60)
        for j in range(1, n):
            http(f"{dash.base}/api/sessions/s{j}/keys", "POST", {"keys": ["ctrl+c"]})
        time.sleep(2)
        before = [p.bytes() for p in peers]
        t0 = time.time()
        time.sleep(a.idle_secs)
        rates = [(p.bytes() - b) / (time.time() - t0) for p, b in zip(peers, before)]
        remote = f"s0@{peers[0].name}"
        rows.append((f"3 hosts x {n}, idle: a local pane", dash.key_to_screen("s0", a.samples)))
        rows.append((f"3 hosts x {n}, idle: a peer's pane", dash.key_to_screen(remote, a.samples)))
        for j in range(1, n):
            inject(dash.base, f"s{j}", busy_loop())
            for p in peers:
                inject(p.base, f"s{j}", busy_loop(), p.token)
        time.sleep(2)
        rows.append((f"3 hosts x {n}, the others 20 lines/s: a local pane",
                     dash.key_to_screen("s0", a.samples)))
        rows.append((f"3 hosts x {n}, the others 20 lines/s: a peer's pane",
                     dash.key_to_screen(remote, a.samples)))

        load = open("/proc/loadavg").read().split()[0]
        print(f"# key-to-screen, n={a.samples} each; {os.cpu_count()} CPUs, load {load}; "
              f"tmux capture-pane polling (~3-5 ms resolution)")
        print(f"{'measure':<62} {'p50':>7} {'p90':>7} {'max':>7}  target")
        for name, t in rows:
            q = statistics.quantiles(t, n=10)
            print(f"{name:<62} {statistics.median(t):>5.0f}ms {q[8]:>5.0f}ms {max(t):>5.0f}ms  <= 100 ms")
        for p, r in zip(peers, rates):
            print(f"idle: {p.name}'s veth, {n} panes shown idle, {a.idle_secs} s: "
                  f"{r:.0f} bytes/s ({r / n:.1f} per pane)   target ~0")
    finally:
        if dash:
            # The embedded engine's sessions would outlive the dashboard in their holders.
            for j in range(a.panes):
                try:
                    http(f"{dash.base}/api/sessions/s{j}", "DELETE")
                except OSError:
                    pass
            dash.stop()
        for p in peers:
            p.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
