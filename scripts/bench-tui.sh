#!/usr/bin/env bash
# Dashboard (`telepty tui`) CPU benchmark, side by side with tmux; prints one table.
#
#   scripts/bench-tui.sh             # cargo build --release --benches --bins, then run benches/tui_cpu.rs
#   scripts/bench-tui.sh --no-build  # reuse the newest target/release/deps/tui_cpu-* executable
#
# What it measures (details in benches/tui_cpu.rs):
#   * 16 panes each printing ~1 MB/s: CPU of the telepty tui process (% of one core) vs the
#     inner tmux server + its attached client showing the same 16 programs, both at 240x67
#     inside a private outer tmux; plus the bytes/s the programs managed to write (fairness).
#   * 16 panes each printing 20 agent-like lines/s (issue 12's "moderate output"): the same
#     comparison, telepty tui vs tmux server + client.
#   * 16 idle bash sessions in the dashboard: CPU (target <= 1 %).
#   * UI-thread CPU and a lower bound on frame time (no public frame hook in src/tui yet).
#
# Knobs: TELEPTY_BENCH_TUI_SECS (10), TELEPTY_BENCH_TUI_WARMUP (3), TELEPTY_BENCH_TUI_PANES (16),
# TELEPTY_BENCH_TUI_CONCURRENT=1 (sample telepty and tmux over the same window instead of one
# after the other), TELEPTY_BENCH_TUI_PHASES (idle,flood,moderate: which phases run). Needs tmux and python3. Only private tmux servers (`tmux -L tuibench-outer`,
# `tmux -L tuibench-inner`) are started, and they are killed on exit (also on Ctrl-C); the
# dashboard exits with its outer tmux (SIGHUP) and takes its sessions with it.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=1
[[ "${1:-}" == "--no-build" ]] && BUILD=0

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/telepty-bench-tui.XXXXXX")
export TELEPTY_BENCH_RUN_DIR="$RUN_DIR"
export TELEPTY_BENCH_TMUX_PREFIX="tuibench"
BENCH_PID=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$BENCH_PID" ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    for tag in outer inner; do
        env -u TMUX tmux -L "$TELEPTY_BENCH_TMUX_PREFIX-$tag" kill-server 2>/dev/null || true
        rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$TELEPTY_BENCH_TMUX_PREFIX-$tag"
    done
    rm -rf "$RUN_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v tmux >/dev/null || { echo "bench-tui: tmux is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench-tui: python3 is required" >&2; exit 1; }

MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "== telepty tui CPU benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "   machine: $(nproc) cores, $MODEL, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(tmux -V)"

if [[ $BUILD == 1 ]]; then
    echo "== cargo build --release --benches --bins (log: $RUN_DIR/build.log)"
    if ! cargo build --release --benches --bins --message-format=json-render-diagnostics \
        >"$RUN_DIR/build.json" 2>"$RUN_DIR/build.log"; then
        cat "$RUN_DIR/build.log" >&2
        echo "build failed" >&2
        exit 1
    fi
    EXE=$(grep '"reason":"compiler-artifact"' "$RUN_DIR/build.json" | grep '"kind":\["bench"\]' |
        sed -n 's/.*"executable":"\([^"]*tui_cpu-[^"]*\)".*/\1/p' | head -1)
else
    EXE=$(ls -t "$ROOT"/target/release/deps/tui_cpu-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
fi
[[ -n "${EXE:-}" && -x "$EXE" ]] || { echo "bench-tui: no tui_cpu executable" >&2; exit 1; }

echo "   load before measuring: $(uptime | sed 's/.*load average/load average/')"
echo "== $(basename "$EXE") (progress on stderr)"
"$EXE" >"$RUN_DIR/out" &
BENCH_PID=$!
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=
echo "   load after: $(uptime | sed 's/.*load average/load average/')"
grep -v '^ROW' "$RUN_DIR/out" || true

echo
echo "== results ($(date -u '+%Y-%m-%d'), $(nproc) cores, $MODEL)"
grep '^ROW' "$RUN_DIR/out" | awk -F'\t' '
    BEGIN { n = 0 }
    { n++; for (i = 2; i <= 7; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END {
        split("metric|telepty|reference|ratio|target|verdict", h, "|")
        for (i = 2; i <= 7; i++) if (length(h[i-1]) > w[i]) w[i] = length(h[i-1])
        for (i = 2; i <= 7; i++) printf "| %-*s ", w[i], h[i-1]
        printf "|\n"
        for (i = 2; i <= 7; i++) { s = sprintf("%*s", w[i], ""); gsub(/ /, "-", s); printf "|-%s-", s }
        printf "|\n"
        for (r = 1; r <= n; r++) { for (i = 2; i <= 7; i++) printf "| %-*s ", w[i], c[r, i]; printf "|\n" }
    }'
if ((rc != 0)); then
    echo "!! tui_cpu failed (exit $rc)" >&2
fi
exit "$rc"
