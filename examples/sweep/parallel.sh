#!/usr/bin/env bash
# Run a sweep on one machine with GNU parallel: one `memcap sweep run` per task
# index, 2 at a time. Re-running the same line after a crash or Ctrl-C only
# runs what is missing (results are keyed by task id and written atomically).
#
#   examples/sweep/parallel.sh [CONFIG] [RESULTS] [JOBS]
set -euo pipefail
CONFIG=${1:-examples/sweep/tiny.json}
RESULTS=${2:-results}
JOBS=${3:-2}
memcap sweep plan "$CONFIG" -o tasks.jsonl
# The one-liner:
seq 0 $(( $(wc -l < tasks.jsonl) - 1 )) | parallel -j "$JOBS" memcap sweep run tasks.jsonl -o "$RESULTS" --index {}
memcap sweep merge "$RESULTS" --tasks tasks.jsonl
memcap report "$RESULTS" -o report
# Without GNU parallel, the same in one process: memcap sweep run tasks.jsonl -o "$RESULTS" --jobs "$JOBS"
