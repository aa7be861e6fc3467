#!/usr/bin/env python3
"""How soon a session's state follows its screen (issue 12): a throwaway daemon (own HOME and
port), one interactive bash; N times, a question appears on the screen (`read -p "...[y/N]"`)
and is answered. For each: the time from the question showing on the rendered screen to the
session's state reading `waiting_input`, and from the answer to `idle` again.

  python3 scripts/state-latency.py [--bin target/release/telepty] [-n 20]

Both sides are polled over HTTP every 5 ms, so figures carry ~5 ms of sampling error.
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, threading, time
import urllib.request

def req(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(base + path, data=data, method=method,
                               headers={"content-type": "application/json"})
    with urllib.request.urlopen(r, timeout=30) as resp:
        return json.loads(resp.read() or b"null")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_until(pred, timeout=20.0, step=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return time.monotonic()
        time.sleep(step)
    raise SystemExit("timed out")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/telepty")
    ap.add_argument("-n", type=int, default=20)
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="telepty-state-")
    port = free_port()
    env = dict(os.environ, HOME=home)
    d = subprocess.Popen([a.bin, "daemon", "--port", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ok(base), 10)
        req(base, "POST", "/api/sessions/spawn",
            {"session_id": "q", "command": "bash", "args": ["--norc", "--noprofile"]})
        state = lambda: req(base, "GET", "/api/sessions/q")["autoState"]["state"]
        screen = lambda: req(base, "GET", "/api/sessions/q/screen")["screen"]
        wait_until(lambda: state() == "idle")
        ask, back = [], []
        for i in range(a.n):
            req(base, "POST", "/api/sessions/q/inject",
                {"prompt": f"read -p 'Proceed-{i}? [y/N] ' x"})
            shown = wait_until(lambda: f"Proceed-{i}? [y/N]" in screen())
            waiting = wait_until(lambda: state() == "waiting_input")
            ask.append((waiting - shown) * 1000)
            req(base, "POST", "/api/sessions/q/inject", {"prompt": "y"})
            answered = wait_until(lambda: last_line(screen()).startswith("[AGENT: q]"))
            idle = wait_until(lambda: state() == "idle")
            back.append((idle - answered) * 1000)
        for name, xs in (("question on screen -> waiting_input", ask),
                         ("prompt back on screen -> idle", back)):
            xs.sort()
            p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
            print(f"{name}: n={len(xs)} p50={p(0.5):.0f} ms p90={p(0.9):.0f} ms max={xs[-1]:.0f} ms")
    finally:
        d.terminate(); d.wait(10)
        subprocess.run(["pkill", "-f", f"__hold {home}"], check=False)
        shutil.rmtree(home, ignore_errors=True)

def last_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else ""

def _ok(base):
    try:
        return req(base, "GET", "/api/health")["status"] == "ok"
    except Exception:
        return False

if __name__ == "__main__":
    main()
