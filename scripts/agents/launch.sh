#!/usr/bin/env bash
# Launch one agent CLI against the mock model server, in a throwaway HOME.
# Usage: launch.sh claude|codex|gemini
# Needs: AGENT_HOME (a fresh dir), MOCK_URL (http://127.0.0.1:PORT), AGENTS_NPM (npm prefix
# holding node_modules/.bin/{claude,codex,gemini}). Run with the project dir as cwd.
set -euo pipefail
agent=${1:?agent}; shift
: "${AGENT_HOME:?}" "${MOCK_URL:?}" "${AGENTS_NPM:?}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cwd=$(pwd -P)
mkdir -p "$AGENT_HOME"
export HOME=$AGENT_HOME
export XDG_CONFIG_HOME=$HOME/.config XDG_CACHE_HOME=$HOME/.cache XDG_DATA_HOME=$HOME/.local/share XDG_STATE_HOME=$HOME/.local/state
# Only the mock server: no proxies, nothing else reachable on purpose.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export NO_UPDATE_NOTIFIER=1 NO_BROWSER=1 BROWSER=true COLORTERM=truecolor
bin=$AGENTS_NPM/node_modules/.bin
key=sk-mock-telepty-0123456789abcdefghij
subst() { sed -e "s#@MOCK_URL@#$MOCK_URL#g" -e "s#@CWD@#$cwd#g" -e "s#@KEY@#$key#g" -e "s#@KEY20@#${key: -20}#g" "$1"; }
case $agent in
claude)
    mkdir -p "$HOME/.claude"
    subst "$here/claude.json" > "$HOME/.claude.json"
    subst "$here/claude-settings.json" > "$HOME/.claude/settings.json"
    export ANTHROPIC_BASE_URL=$MOCK_URL ANTHROPIC_API_KEY=$key
    export DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_BUG_COMMAND=1
    export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY=1
    export DISABLE_COST_WARNINGS=1 DISABLE_NON_ESSENTIAL_MODEL_CALLS=1
    exec "$bin/claude" "$@"
    ;;
codex)
    mkdir -p "$HOME/.codex"
    export CODEX_HOME=$HOME/.codex
    subst "$here/codex-config.toml" > "$CODEX_HOME/config.toml"
    export MOCK_API_KEY=$key
    exec "$bin/codex" "$@"
    ;;
gemini)
    mkdir -p "$HOME/.gemini"
    subst "$here/gemini-settings.json" > "$HOME/.gemini/settings.json"
    export GEMINI_API_KEY=$key GOOGLE_GEMINI_BASE_URL=$MOCK_URL GEMINI_CLI_TRUST_WORKSPACE=true
    export GEMINI_CLI_NO_RELAUNCH=true
    exec "$bin/gemini" "$@"
    ;;
*) echo "unknown agent $agent" >&2; exit 2 ;;
esac
