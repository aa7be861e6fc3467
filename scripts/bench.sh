#!/usr/bin/env bash
# Run every telepty benchmark and print one table: telepty / reference / ratio / target / verdict.
#
#   scripts/bench.sh            # build (release) + run everything, ~1 minute after the build
#   scripts/bench.sh --no-build # reuse the last `cargo build --release --benches` artifacts
#   BENCH_ONLY="pty_throughput daemon_rss" scripts/bench.sh   # a subset
#
# Knobs (environment): TELEPTY_BENCH_MB (50), TELEPTY_BENCH_RUNS (3), TELEPTY_BENCH_INJECTS
# (3000), TELEPTY_BENCH_ECHOES (50), TELEPTY_BENCH_LIST_RUNS (200), TELEPTY_BENCH_SESSIONS (100);
# TELEPTY_BENCH_DAEMON_ENV="K=V ..." passes settings to the daemons under test (experiments).
#
# BENCH_QUIET_WAIT (90): seconds to wait before each bench for other CPU load to go away.
#
# Needs: cargo, tmux for the reference columns (rows say "tmux missing" otherwise).
# Optional: hyperfine (a cross-check of `telepty list`). Every daemon and tmux server the
# benches start is private (temporary HOME, own port, `tmux -L <unique socket>`) and is
# stopped on exit, also on Ctrl-C; nothing this script did not start is ever signalled.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=1
[[ "${1:-}" == "--no-build" ]] && BUILD=0

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/telepty-bench.XXXXXX")
export TELEPTY_BENCH_RUN_DIR="$RUN_DIR"
export TELEPTY_BENCH_TMUX_PREFIX="tpbench$$"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Daemons started by the benches (pids recorded by benches/support), if still alive and
    # still a telepty daemon (a recycled pid is left alone).
    local pid signalled=()
    if [[ -f "$RUN_DIR/pids" ]]; then
        while read -r pid; do
            [[ -n "$pid" && -r /proc/$pid/cmdline ]] || continue
            if tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -q 'telepty daemon'; then
                kill -TERM "$pid" 2>/dev/null && signalled+=("$pid")
            fi
        done <"$RUN_DIR/pids"
    fi
    # Let them finish writing into their HOME (under $RUN_DIR) before it is removed.
    for pid in "${signalled[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    done
    # tmux servers on our private sockets only.
    if command -v tmux >/dev/null 2>&1; then
        for sock in "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/${TELEPTY_BENCH_TMUX_PREFIX}"-*; do
            [[ -S "$sock" ]] || continue
            env -u TMUX tmux -L "$(basename "$sock")" kill-server 2>/dev/null || true
            rm -f "$sock"
        done
    fi
    rm -rf "$RUN_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Percentage of all CPUs busy over one second (from /proc/stat).
cpu_busy() {
    local a b
    read -r -a a < <(grep '^cpu ' /proc/stat)
    sleep 1
    read -r -a b < <(grep '^cpu ' /proc/stat)
    local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    ((total > 0)) && echo $((100 * (total - idle) / total)) || echo 0
}

# Other work on a shared machine skews every figure: wait (up to BENCH_QUIET_WAIT s, 90) for
# the CPUs to be mostly idle; print the last busy percentage.
wait_quiet() {
    local deadline=$((SECONDS + ${BENCH_QUIET_WAIT:-90})) busy
    while :; do
        busy=$(cpu_busy)
        if ((busy <= 25 || SECONDS >= deadline)); then
            echo "$busy"
            return
        fi
    done
}

BENCHES=(pty_throughput inject_latency cli_list daemon_rss tui_cpu)
[[ -n "${BENCH_ONLY:-}" ]] && read -r -a BENCHES <<<"$BENCH_ONLY"

echo "== telepty benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "   machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
echo "   tmux: $(tmux -V 2>/dev/null || echo missing), hyperfine: $(command -v hyperfine >/dev/null && hyperfine --version || echo not installed)"

# ---- build -------------------------------------------------------------------------------
declare -A EXE=()
if [[ $BUILD == 1 ]]; then
    echo "== cargo build --release --benches --bins (log: $RUN_DIR/build.log)"
    if ! cargo build --release --benches --bins --message-format=json-render-diagnostics \
        >"$RUN_DIR/build.json" 2>"$RUN_DIR/build.log"; then
        cat "$RUN_DIR/build.log" >&2
        echo "build failed" >&2
        exit 1
    fi
    # Executables of the bench targets, from cargo's own artifact messages.
    while IFS= read -r exe; do
        name=$(basename "$exe")
        EXE[${name%-*}]=$exe
    done < <(grep '"reason":"compiler-artifact"' "$RUN_DIR/build.json" | grep '"kind":\["bench"\]' |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
else
    # Newest build of each bench in target/release/deps.
    for b in "${BENCHES[@]}"; do
        exe=$(ls -t "$ROOT"/target/release/deps/"$b"-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
        [[ -n "$exe" ]] && EXE[$b]=$exe
    done
fi

# ---- run ---------------------------------------------------------------------------------
ROWS_FILE="$RUN_DIR/rows"
: >"$ROWS_FILE"
FAILED=()
for b in "${BENCHES[@]}"; do
    exe=${EXE[$b]:-}
    if [[ -z "$exe" || ! -x "$exe" ]]; then
        echo "!! no executable for bench $b" >&2
        FAILED+=("$b")
        continue
    fi
    busy=$(wait_quiet)
    echo "== $b (CPU busy before start: ${busy}%)"
    if ((busy > 25)); then
        echo "   warning: other work is using the CPU (${busy}%); figures may be pessimistic" >&2
    fi
    start=$(date +%s%N)
    read -r -a cpu0 < <(grep '^cpu ' /proc/stat)
    # stdout: ROW lines for the table (plus anything else, echoed); stderr: progress and details.
    if "$exe" >"$RUN_DIR/$b.out"; then
        :
    else
        echo "!! bench $b failed (exit $?)" >&2
        FAILED+=("$b")
    fi
    grep -v '^ROW' "$RUN_DIR/$b.out" || true
    grep '^ROW' "$RUN_DIR/$b.out" >>"$ROWS_FILE" || true
    read -r -a cpu1 < <(grep '^cpu ' /proc/stat)
    idle=$(((cpu1[4] + cpu1[5]) - (cpu0[4] + cpu0[5])))
    total=0
    for i in 1 2 3 4 5 6 7 8; do total=$((total + cpu1[i] - cpu0[i])); done
    ((total > 0)) || total=1
    awk -v b="$b" -v s="$start" -v e="$(date +%s%N)" -v u=$((100 * (total - idle) / total)) \
        'BEGIN { printf "   (%s took %.1fs; all CPUs %d%% busy meanwhile, the bench included)\n", b, (e - s) / 1e9, u }'
done

# ---- table -------------------------------------------------------------------------------
echo
echo "== results ($(date -u '+%Y-%m-%d'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
awk -F'\t' '
    BEGIN { n = 0 }
    { n++; for (i = 2; i <= 7; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END {
        split("metric|telepty|reference|ratio|target|verdict", h, "|")
        for (i = 2; i <= 7; i++) if (length(h[i-1]) > w[i]) w[i] = length(h[i-1])
        line = ""
        for (i = 2; i <= 7; i++) { printf "%-*s  ", w[i], h[i-1]; s = sprintf("%*s", w[i], ""); gsub(/ /, "-", s); line = line s "  " }
        printf "\n%s\n", line
        for (r = 1; r <= n; r++) { for (i = 2; i <= 7; i++) printf "%-*s  ", w[i], c[r, i]; printf "\n" }
    }' "$ROWS_FILE"

misses=$(awk -F'\t' '$7 == "MISS"' "$ROWS_FILE" | wc -l)
passes=$(awk -F'\t' '$7 == "PASS"' "$ROWS_FILE" | wc -l)
echo
echo "== $passes PASS, $misses MISS${FAILED:+, failed benches: ${FAILED[*]}}"
[[ ${#FAILED[@]} -eq 0 ]]
