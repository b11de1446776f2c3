#!/usr/bin/env bash
# Runs ../shared/bench/compare.py: chatstream vs. the seed's Go design on the same load.
# Usage: scripts/bench.sh [compare.py options, e.g. --levels 50,200,1000]
# Extra server settings pass through the environment (e.g. CHATSTREAM_DATABASE_URL).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
compare=${COMPARE:-$here/../shared/bench/compare.py}
port=${BENCH_PORT:-9391}
data=$(mktemp -d /tmp/chatstream-bench.XXXXXX)
trap 'rm -rf "$data"' EXIT
# One user drives every stream, so the per-user and per-instance limits are lifted.
export CHATSTREAM_DATA_DIR=$data CHATSTREAM_EMAIL_VERIFICATION=off CHATSTREAM_LOG_LEVEL=warning \
  CHATSTREAM_ANSWERS_PER_USER=1000000 CHATSTREAM_ANSWERS_MAX=1000000
token_cmd="curl -sf -X POST http://127.0.0.1:$port/api/v1/user/register -H 'Content-Type: application/json' \
  -d '{\"email\":\"bench@example.com\",\"password\":\"benchmark-pw\",\"username\":\"bench\"}' \
  | $here/.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])'"
exec python3 "$compare" \
  --target-cmd "CHATSTREAM_OPENAI_BASE_URL={upstream} CHATSTREAM_OPENAI_MODEL=upstream-sim $here/.venv/bin/chatstream serve --port {port}" \
  --target-url "http://127.0.0.1:$port" --target-port "$port" --token-cmd "$token_cmd" "$@"
