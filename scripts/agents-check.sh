#!/usr/bin/env bash
# Real-agent delivery check (issue 11): drives Claude Code, Codex and Gemini CLI through telepty,
# answered by a local mock model server, and counts what reached the model.
# `bash scripts/agents-check.sh --help` says how.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BIN_DIR=./target/release
AGENTS=claude,codex,gemini
CHECKS=latency,sequential,parallel,loaded,sigstop
N_SEQ=20
N_PAR=10
N_STOP=5
N_LAT=10
CACHE=${TELEPTY_AGENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/telepty-agents}
KEEP=0
VERBOSE=0
SCREENS=
CLAUDE_VERSION=${CLAUDE_VERSION:-2.1.197}
CODEX_VERSION=${CODEX_VERSION:-0.171.0}
GEMINI_VERSION=${GEMINI_VERSION:-0.61.0}

usage() {
    cat <<EOF
Usage: bash scripts/agents-check.sh [options]

Installs Claude Code, Codex and Gemini CLI with npm into a cache directory (once), starts
scripts/mock-model.py on 127.0.0.1, a private telepty daemon (own HOME and port), spawns each
agent under it (120x40) and runs, per agent, with a fresh agent process per check:

  latency     ${N_LAT} injects into an idle agent (1 s without output before each), one at a
              time: inject -> reply on the rendered
              screen (telepty wait --pattern), p50/p90
  sequential  ${N_SEQ} injects, each waiting for its reply
  parallel    ${N_PAR} 'telepty inject' started at once
  loaded      the same with two busy loops pinned on cores 0 and 1 (taskset)
  sigstop     ${N_STOP} rounds: SIGSTOP the agent's process group, inject, 1 s later SIGCONT

Each inject carries a unique marker; the mock server's prompt log decides: submitted (seen),
merged (two markers in one prompt), lost (never seen before the deadline), doubled (seen in two
prompts), mangled (seen alone but not as the exact text sent). One line per check, e.g.
  claude sequential-20: 20/20 submitted, 0 merged, 0 lost, 0 doubled, 0 mangled, inject->reply p50 412 ms [ok]
Exit status: 0 if every check passed, 1 if any failed, 2 on a usage or setup error.
Everything it started (agents, codex app-servers, daemon, mock server, busy loops) is stopped on
exit, also on ctrl+c.

Options:
  --bin DIR          telepty binaries (telepty, telepty-hold) [default: ./target/release]
  --agents LIST      comma list of claude,codex,gemini [default: $AGENTS]
  --checks LIST      comma list of $CHECKS [default: all]
  --seq N --par N --stop N --lat N   sizes [default: $N_SEQ $N_PAR $N_STOP $N_LAT]
  --cache DIR        npm cache/prefix for the CLIs [default: $CACHE]
  --screens FILE     instead of the checks, record each agent's rendered screens (ready, typed,
                     3-line paste, 2000-char text, busy, reply) as markdown into FILE
  --keep             keep the work directory (logs, prompt log, screens) and print its path
  -v, --verbose      print the details of failing checks (prompts seen, screens)
  -h, --help         this help

Environment: CLAUDE_VERSION, CODEX_VERSION, GEMINI_VERSION pin the npm packages;
AGENTS_PROFILE=NAME spawns every agent with that telepty profile instead of its own (e.g.
\`generic\`: the quiet-window Enter gate alone, for a before/after comparison)
[default: $CLAUDE_VERSION, $CODEX_VERSION, $GEMINI_VERSION]. Needs node/npm, python3, curl, taskset.
Not part of cargo test: it takes a few minutes and needs the npm registry on first use.
EOF
}

die() { echo "agents-check: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN_DIR=${2:?}; shift 2 ;;
    --agents) AGENTS=${2:?}; shift 2 ;;
    --checks) CHECKS=${2:?}; shift 2 ;;
    --seq) N_SEQ=${2:?}; shift 2 ;;
    --par) N_PAR=${2:?}; shift 2 ;;
    --stop) N_STOP=${2:?}; shift 2 ;;
    --lat) N_LAT=${2:?}; shift 2 ;;
    --cache) CACHE=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --screens) SCREENS=${2:?}; shift 2 ;;
    -v | --verbose) VERBOSE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "agents-check: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

BIN_DIR=$(cd "$BIN_DIR" 2>/dev/null && pwd) || die "--bin: no such directory"
[ -x "$BIN_DIR/telepty" ] || die "no telepty binary in $BIN_DIR (build it: cargo build --release)"
for tool in node npm python3 curl taskset; do
    command -v "$tool" >/dev/null || die "needs $tool on PATH"
done
for a in ${AGENTS//,/ }; do
    case $a in claude | codex | gemini) ;; *) die "unknown agent $a" ;; esac
done
for c in ${CHECKS//,/ }; do
    case $c in latency | sequential | parallel | loaded | sigstop) ;; *) die "unknown check $c" ;; esac
done

now_ms() { date +%s%3N; }

# ------------------------------------------------------------------ state and cleanup
WD=$(mktemp -d /var/tmp/telepty-agents.XXXXXX) || die "mktemp failed"
NPM=$CACHE/npm
MOCK_PID=
DAEMON_PID=
TPORT=
BUSY_PIDS=()
AGENT_PGIDS=()
FAILED=0

kill_pgid() { # kill_pgid PGID: TERM, wait up to 3 s, then KILL
    local g=$1 i
    kill -0 -- "-$g" 2>/dev/null || return 0
    kill -TERM -- "-$g" 2>/dev/null
    for i in $(seq 30); do kill -0 -- "-$g" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL -- "-$g" 2>/dev/null
}

kill_pid() { # kill_pid PID: TERM, wait up to 3 s, then KILL
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 30); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
}

codex_app_servers() { # pids the codex app-server daemon wrote into our throwaway HOME
    local f
    for f in "$WD"/homes/codex/.codex/app-server-daemon/*.pid; do
        [ -f "$f" ] && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f" 2>/dev/null
    done
}

stop_busy() {
    local p
    for p in "${BUSY_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${BUSY_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    BUSY_PIDS=()
}

cleanup() {
    local rc=$? g p
    trap - EXIT INT TERM
    stop_busy
    for g in "${AGENT_PGIDS[@]}"; do kill -CONT -- "-$g" 2>/dev/null; done
    # Only while our daemon lives: a client command would start a new one otherwise.
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        for a in ${AGENTS//,/ }; do T kill "$a" >/dev/null 2>&1; done
    fi
    for g in "${AGENT_PGIDS[@]}"; do kill_pgid "$g"; done
    for p in $(codex_app_servers); do kill_pid "$p"; done
    kill_pid "$DAEMON_PID"
    kill_pid "$MOCK_PID"
    if [ "$KEEP" = 1 ]; then
        echo "work directory kept: $WD" >&2
    else
        rm -rf "$WD"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "agents-check: interrupted" >&2; exit 130' INT TERM

T() { HOME=$WD/th TELEPTY_PORT=$TPORT "$BIN_DIR/telepty" "$@"; }
api() { curl -s --max-time 10 "http://127.0.0.1:$TPORT/api/$1"; }

wait_file() { # wait_file PATH SECONDS
    local i
    for i in $(seq $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
    return 1
}

# ------------------------------------------------------------------ install
installed_version() { # installed_version PKG
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$NPM/node_modules/$1/package.json" 2>/dev/null
}

install_clis() {
    local want=("@anthropic-ai/claude-code@$CLAUDE_VERSION" "@openai/codex@$CODEX_VERSION" "@google/gemini-cli@$GEMINI_VERSION")
    if [ "$(installed_version @anthropic-ai/claude-code)" = "$CLAUDE_VERSION" ] &&
        [ "$(installed_version @openai/codex)" = "$CODEX_VERSION" ] &&
        [ "$(installed_version @google/gemini-cli)" = "$GEMINI_VERSION" ] &&
        [ -x "$NPM/node_modules/.bin/claude" ] && [ -x "$NPM/node_modules/.bin/codex" ] && [ -x "$NPM/node_modules/.bin/gemini" ]; then
        return 0
    fi
    mkdir -p "$NPM"
    echo "installing ${want[*]} into $NPM ..." >&2
    npm install --prefix "$NPM" --no-audit --no-fund --loglevel=error "${want[@]}" >"$WD/npm-install.log" 2>&1 ||
        { cat "$WD/npm-install.log" >&2; die "npm install failed"; }
}

# ------------------------------------------------------------------ agents
ready_re() {
    case $1 in
    claude) echo '(?m)^❯ *$' ;;
    codex) echo '(?m)^› ' ;;
    gemini) echo 'Type your message' ;;
    esac
}

agent_pid() { api "sessions/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("pid") or "")' 2>/dev/null; }

spawn_agent() { # spawn_agent AGENT -> sets APGID; returns 1 if it never got ready
    local a=$1
    T kill "$a" >/dev/null 2>&1
    T spawn --id "$a" --profile "${AGENTS_PROFILE:-$a}" --cwd "$WD/proj" --detach --cols 120 --rows 40 -- \
        env AGENT_HOME="$WD/homes/$a" MOCK_URL="http://127.0.0.1:$MOCK_PORT" AGENTS_NPM="$NPM" \
        bash "$HERE/agents/launch.sh" "$a" >>"$WD/spawn.log" 2>&1 || return 1
    APGID=$(agent_pid "$a")
    [ -n "$APGID" ] && AGENT_PGIDS+=("$APGID")
    T wait "$a" --pattern "$(ready_re "$a")" --timeout-ms 90000 >/dev/null || return 1
    # The first frames redraw a few times (banner, tips, model checks): let them settle.
    T wait "$a" --settle-ms 1000 --timeout-ms 15000 >/dev/null
    return 0
}

stop_agent() {
    local a=$1
    T kill "$a" >/dev/null 2>&1
    [ -n "${APGID:-}" ] && kill_pgid "$APGID"
    APGID=
}

save_screen() { # save_screen AGENT LABEL
    {
        echo "== $1 $2"
        api "sessions/$1/screen?format=json" | python3 -c '
import json,sys
d=json.load(sys.stdin); c=d["cursor"]
print("cursor row=%d col=%d visible=%s title=%r" % (c["row"], c["col"], c["visible"], d.get("title")))
for i,r in enumerate(d["rows"]):
    if r.strip(): print("%02d|%s" % (i, r.rstrip()))' 2>/dev/null
    } >>"$WD/screens.txt"
}

# ------------------------------------------------------------------ tally
RUN=$(tr -dc 'A-Z' </dev/urandom | head -c 4)

marker() { printf '%s-%s%02d' "$RUN" "$1" "$2"; } # marker CODE I
text_for() { echo "$1 reply with ok"; }

# wait_markers AGENT SINCE_EPOCH SECONDS MARKERS...: poll the prompt log until every marker was
# seen (or the deadline), then let the agent settle so a late duplicate is counted too.
wait_markers() {
    local a=$1 since=$2 secs=$3
    shift 3
    local deadline=$(($(date +%s) + secs))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        python3 - "$WD/prompts.jsonl" "$a" "$since" "$@" <<'EOF' && break
import json, sys
log, agent, since, markers = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
seen = set()
try:
    for line in open(log, encoding="utf-8"):
        e = json.loads(line)
        if e.get("agent") == agent and not e.get("side") and e["t"] >= since:
            seen.update(m for m in markers if m in e["prompt"])
except FileNotFoundError:
    pass
sys.exit(0 if len(seen) == len(markers) else 1)
EOF
        sleep 0.25
    done
    T wait "$a" --settle-ms 2000 --timeout-ms 20000 >/dev/null
}

# tally AGENT NAME SINCE EXTRA MARKERS...: prints the check's line, returns 1 if it failed
tally() {
    local a=$1 name=$2 since=$3 extra=$4
    shift 4
    # The rendered screen (with scrollback) tells a lost marker that was typed but never
    # submitted from one that never showed up at all.
    api "sessions/$a/screen?lines=2000" >"$WD/final-screen.json" 2>/dev/null
    python3 - "$WD/prompts.jsonl" "$a" "$name" "$since" "$extra" "$VERBOSE" "$RUN" "$WD/final-screen.json" "$@" <<'EOF'
import json, re, sys
log, agent, name, since, extra, verbose, run, screen_file = sys.argv[1:9]
markers = sys.argv[9:]
try:
    screen = json.load(open(screen_file)).get("screen") or ""
except Exception:
    screen = ""
since = float(since)
pat = re.compile(re.escape(run) + r"-[a-z]\d\d")
prompts = []
try:
    for line in open(log, encoding="utf-8"):
        e = json.loads(line)
        if e.get("agent") == agent and not e.get("side") and e["t"] >= since:
            prompts.append(e["prompt"])
except FileNotFoundError:
    pass
want = set(markers)
count = {m: 0 for m in markers}
merged = set()
mangled = set()
for p in prompts:
    found = [m for m in pat.findall(p) if m in want]
    for m in set(found):
        count[m] += 1
    if len(set(found)) > 1:
        merged.update(found)
    elif len(found) == 1 and p != found[0] + " reply with ok":
        mangled.add(found[0])
submitted = sum(1 for m in markers if count[m] > 0)
lost = [m for m in markers if count[m] == 0]
unsubmitted = [m for m in lost if m in screen]
doubled = [m for m in markers if count[m] > 1]
n = len(markers)
ok = submitted == n and not merged and not lost and not doubled and not mangled
lost_s = "%d lost" % len(lost)
if unsubmitted:
    lost_s += " (%d typed, never submitted)" % len(unsubmitted)
line = "%s %s: %d/%d submitted, %d merged, %s, %d doubled, %d mangled%s [%s]" % (
    agent, name, submitted, n, len(merged), lost_s, len(doubled), len(mangled - merged),
    (", " + extra) if extra else "", "ok" if ok else "FAIL")
print(line, flush=True)
if verbose == "1" and not ok:
    for p in prompts:
        found = [m for m in pat.findall(p) if m in want]
        if len(found) != 1 or p != found[0] + " reply with ok":
            print("    prompt: %r" % p[:300])
    if lost:
        print("    lost: %s" % " ".join(lost))
    if doubled:
        print("    doubled: %s" % " ".join(doubled))
sys.exit(0 if ok else 1)
EOF
}

percentiles() { # percentiles FILE -> "p50 X ms, p90 Y ms (n=N)"
    python3 - "$1" <<'EOF'
import sys
v = sorted(int(x) for x in open(sys.argv[1]).read().split())
if not v:
    print("no replies")
else:
    pick = lambda q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
    print("p50 %d ms, p90 %d ms, max %d ms (n=%d)" % (pick(0.5), pick(0.9), v[-1], len(v)))
EOF
}

# ------------------------------------------------------------------ checks
# Each check gets a fresh agent: an unsubmitted leftover of one check must not glue onto the next.

check_serial() { # check_serial AGENT NAME CODE N: one inject at a time, each waits for its reply
    local a=$1 name=$2 code=$3 n=$4 i m t0 t1 since markers=()
    local lat=$WD/lat.$a.$code
    : >"$lat"
    spawn_agent "$a" || { echo "$a $name: agent did not become ready [FAIL]"; save_screen "$a" "$name-spawn"; return 1; }
    since=$(date +%s.%N)
    for i in $(seq 1 "$n"); do
        m=$(marker "$code" "$i")
        markers+=("$m")
        # latency: the agent idle (a second without output) before each inject
        [ "$code" = l ] && T wait "$a" --settle-ms 1000 --timeout-ms 15000 >/dev/null 2>&1
        t0=$(now_ms)
        if T inject "$a" "$(text_for "$m")" >>"$WD/inject.log" 2>&1 &&
            T wait "$a" --pattern "ok: $m" --timeout-ms 30000 >/dev/null 2>&1; then
            t1=$(now_ms)
            echo $((t1 - t0)) >>"$lat"
        else
            save_screen "$a" "$name-$m-no-reply"
        fi
    done
    wait_markers "$a" "$since" 10 "${markers[@]}"
    save_screen "$a" "$name-end"
    local extra="inject->reply $(percentiles "$lat")"
    tally "$a" "$name" "$since" "$extra" "${markers[@]}"
    local rc=$?
    stop_agent "$a"
    return $rc
}

check_parallel() { # check_parallel AGENT NAME CODE N LOADED
    local a=$1 name=$2 code=$3 n=$4 loaded=$5 i m since pids=() markers=() t0 t1 rc
    spawn_agent "$a" || { echo "$a $name: agent did not become ready [FAIL]"; save_screen "$a" "$name-spawn"; return 1; }
    if [ "$loaded" = 1 ]; then
        taskset -c 0 sh -c 'while :; do :; done' &
        BUSY_PIDS+=($!)
        taskset -c 1 sh -c 'while :; do :; done' &
        BUSY_PIDS+=($!)
    fi
    since=$(date +%s.%N)
    t0=$(now_ms)
    for i in $(seq 1 "$n"); do
        m=$(marker "$code" "$i")
        markers+=("$m")
        T inject "$a" "$(text_for "$m")" >>"$WD/inject.log" 2>&1 &
        pids+=($!)
    done
    local inject_fail=0
    for i in "${pids[@]}"; do wait "$i" || inject_fail=$((inject_fail + 1)); done
    wait_markers "$a" "$since" 120 "${markers[@]}"
    t1=$(now_ms)
    stop_busy
    save_screen "$a" "$name-end"
    local extra="settled after $(((t1 - t0) / 1000)) s"
    [ "$inject_fail" -gt 0 ] && extra="$extra, $inject_fail inject commands failed"
    tally "$a" "$name" "$since" "$extra" "${markers[@]}"
    rc=$?
    stop_agent "$a"
    return $rc
}

check_sigstop() { # check_sigstop AGENT NAME CODE N
    local a=$1 name=$2 code=$3 n=$4 i m since markers=() ip rc replies=0
    spawn_agent "$a" || { echo "$a $name: agent did not become ready [FAIL]"; save_screen "$a" "$name-spawn"; return 1; }
    since=$(date +%s.%N)
    for i in $(seq 1 "$n"); do
        m=$(marker "$code" "$i")
        markers+=("$m")
        kill -STOP -- "-$APGID"
        T inject "$a" "$(text_for "$m")" >>"$WD/inject.log" 2>&1 &
        ip=$!
        sleep 1 # the fault: the agent does not read its terminal for 1 s
        kill -CONT -- "-$APGID"
        wait "$ip"
        if T wait "$a" --pattern "ok: $m" --timeout-ms 20000 >/dev/null 2>&1; then
            replies=$((replies + 1))
        else
            save_screen "$a" "$name-$m-no-reply"
        fi
    done
    wait_markers "$a" "$since" 10 "${markers[@]}"
    save_screen "$a" "$name-end"
    tally "$a" "$name" "$since" "$replies/$n replies on screen" "${markers[@]}"
    rc=$?
    stop_agent "$a"
    return $rc
}

check_latency() {
    local a=$1 rc
    # The same loop as sequential; the line reports the latency distribution.
    check_serial "$a" "latency-idle-$N_LAT" l "$N_LAT"
}

# ------------------------------------------------------------------ screens (--screens FILE)
cap() { # cap AGENT LABEL: one screen as markdown
    api "sessions/$1/screen?format=json" | python3 -c '
import json,sys
d=json.load(sys.stdin); c=d["cursor"]
print("### %s\n" % sys.argv[1])
print("rows=%d cols=%d cursor(row=%d, col=%d, visible=%s) alt_screen=%s title=%r\n" % (d["row_count"], d["cols"], c["row"], c["col"], c["visible"], d["alt_screen"], d.get("title")))
print("```")
for i,r in enumerate(d["rows"]): print("%02d|%s" % (i, r.rstrip()))
print("```\n")' "$2"
}

record_screens() { # record_screens AGENT >> FILE
    local a=$1 long
    settle() { T wait "$a" --settle-ms "${1:-700}" --timeout-ms 8000 >/dev/null; }
    waitp() { T wait "$a" --pattern "$1" --timeout-ms "${2:-20000}" >/dev/null || echo "(timed out waiting for /$1/)"; }
    gone() { local i; for i in $(seq 100); do T read-screen "$a" | grep -Eq "$1" || return 0; sleep 0.1; done; }
    clear_input() { T keys "$a" ctrl+c >/dev/null; gone "$1"; settle; } # only with text in the input: an empty ctrl+c quits Codex
    echo "## $a $(HOME=$WD/homes/version-$a "$NPM/node_modules/.bin/$a" --version 2>/dev/null | head -1)"
    echo
    spawn_agent "$a" || echo "(agent did not become ready)"
    settle 1500
    cap "$a" "(a) ready, empty input"
    T inject --no-enter "$a" "hello there" >/dev/null; waitp 'hello there'; settle
    cap "$a" "(b) typed 'hello there' (inject --no-enter)"
    clear_input 'hello there'
    T inject --no-enter "$a" "$(printf 'line one\nline two\nline three')" >/dev/null; waitp 'line three|Pasted|pasted'; settle
    cap "$a" "(c) 3-line text, not submitted"
    clear_input 'line three|Pasted|pasted'
    long=$(python3 -c 'print(("abcdefghi " * 200)[:1999] + "Z")')
    T inject --no-enter "$a" "$long" >/dev/null; waitp 'abcdefghiZ|Pasted|pasted' 10000; settle 1000
    cap "$a" "(d) 2000-char one-line text ending in Z, not submitted"
    clear_input 'abcdefghiZ|Pasted|pasted|abcdefghi abc'
    T inject "$a" "SLOW please" >/dev/null
    sleep 1.2 # the mock answers SLOW after 3 s: this is the busy screen
    cap "$a" "(e) busy, 1.2 s after injecting 'SLOW please'"
    waitp "ok: SLOW please"
    settle 1500
    cap "$a" "(f) after the reply, settled"
    stop_agent "$a"
}

# ------------------------------------------------------------------ main
install_clis
mkdir -p "$WD/th" "$WD/homes" "$WD/proj"
(cd "$WD/proj" && git init -q . 2>/dev/null; echo "# scratch project for the agents check" >README.md)

# The mock server and the daemon get their own session (setsid: no fork, a background child is
# never a group leader), so a ctrl+c reaches only this script; cleanup then stops them in order.
(exec setsid python3 "$HERE/mock-model.py" --port 0 --port-file "$WD/mock.port" --log "$WD/prompts.jsonl" \
    --debug-log "$WD/mock-debug.jsonl" >"$WD/mock.log" 2>&1) &
MOCK_PID=$!
wait_file "$WD/mock.port" 10 || die "mock server did not start: $(cat "$WD/mock.log")"
MOCK_PORT=$(cat "$WD/mock.port")

TPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$WD" && HOME=$WD/th TELEPTY_PORT=$TPORT exec setsid "$BIN_DIR/telepty" daemon --stop-sessions >"$WD/daemon.log" 2>&1) &
DAEMON_PID=$!
for i in $(seq 100); do api health >/dev/null 2>&1 && break; sleep 0.1; done
api health >/dev/null 2>&1 || die "telepty daemon did not start: $(cat "$WD/daemon.log")"

echo "# telepty agents check $(date -u +%Y-%m-%dT%H:%M:%SZ) - $("$BIN_DIR/telepty" version 2>/dev/null | head -1) ($BIN_DIR)"
for a in ${AGENTS//,/ }; do
    echo "# $a $(HOME=$WD/homes/version-$a "$NPM/node_modules/.bin/$a" --version 2>/dev/null | head -1)"
done
echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), run marker $RUN"

if [ -n "$SCREENS" ]; then
    : >"$SCREENS" || die "cannot write $SCREENS"
    for a in ${AGENTS//,/ }; do record_screens "$a" >>"$SCREENS"; done
    echo "# screens written to $SCREENS"
    exit 0
fi

for a in ${AGENTS//,/ }; do
    for c in ${CHECKS//,/ }; do
        case $c in
        latency) check_latency "$a" ;;
        sequential) check_serial "$a" "sequential-$N_SEQ" s "$N_SEQ" ;;
        parallel) check_parallel "$a" "parallel-$N_PAR" p "$N_PAR" 0 ;;
        loaded) check_parallel "$a" "parallel-$N_PAR-loaded" b "$N_PAR" 1 ;;
        sigstop) check_sigstop "$a" "sigstop-$N_STOP" k "$N_STOP" ;;
        esac || FAILED=$((FAILED + 1))
    done
done

if [ "$VERBOSE" = 1 ] && [ "$FAILED" -gt 0 ] && [ -s "$WD/screens.txt" ]; then
    echo "# screens saved at the end of each check and at each missing reply:"
    sed 's/^/    /' "$WD/screens.txt"
fi
if [ "$FAILED" -gt 0 ]; then
    echo "# $FAILED check(s) failed"
    exit 1
fi
echo "# all checks passed"
exit 0
