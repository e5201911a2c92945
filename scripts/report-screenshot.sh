#!/usr/bin/env bash
# Renders a report's index.html in headless Chromium and saves a screenshot,
# to check that the page a person opens really shows the plots and the table.
# Installs Debian's chromium if it is missing (needs root and apt). Not part of
# `cargo test`: Chromium is a large install.
#
#   scripts/report-screenshot.sh [REPORT_DIR] [OUT.png]
# Without REPORT_DIR it builds memcap, runs examples/sweep/tiny.json and
# reports into target/report-demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
REPORT=${1:-}
OUT=${2:-report-screenshot.png}
if [ -z "$REPORT" ]; then
  cargo build --release -p memcap
  M=target/release/memcap
  W=target/report-demo
  rm -rf "$W" && mkdir -p "$W"
  "$M" sweep plan examples/sweep/tiny.json -o "$W/tasks.jsonl"
  "$M" sweep run "$W/tasks.jsonl" -o "$W/results" --jobs 2 --quiet
  "$M" sweep merge "$W/results" --tasks "$W/tasks.jsonl"
  "$M" report "$W/results" -o "$W/report"
  REPORT="$W/report"
fi
[ -f "$REPORT/index.html" ] || { echo "no index.html in $REPORT" >&2; exit 2; }
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update && apt-get install -y chromium
fi
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" \
  --screenshot="$(realpath -m "$OUT")" --window-size=1200,1600 "file://$(realpath "$REPORT")/index.html"
echo "screenshot: $OUT"
