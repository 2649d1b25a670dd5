#!/usr/bin/env bash
# nudge's slash-command path measured side by side with the anchors (Bolt-JS and axum-min) in one
# run of ../shared/anchors/bench.sh: each server pinned to core 0, wrk to core 1, rounds alternated.
#   project-db0: /nudge help               (verify, parse, render; no database)
#   project-db1: /experiment propose …     (one statement on Postgres: short id, experiment, event)
#   project-db2: the same propose spread over 100 workspaces
# The anchors' load replays one signed request (or a hundred) for the whole run, which nudge would
# drop as replays after the first; NUDGE_SLACK_DROP_REPEATS=false makes it run each one, like the
# anchors, so the figures are of the command path.
# Usage: bench/run.sh [ROUNDS] [SECONDS]     env: ANCHORS=path/to/shared/anchors
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
anchors=${ANCHORS:-$root/../shared/anchors}
rounds=${1:-3}
seconds=${2:-8}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v node >/dev/null || { echo "bench: node and npm are needed for the Bolt-JS anchor" >&2; exit 1; }
(cd "$root" && cargo build --release --quiet)

# A fresh database for every run, so earlier runs' rows do not slow this one.
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS nudge_bench WITH (FORCE)" >/dev/null
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE nudge_bench" >/dev/null

export PROJECT_CMD="exec env RUST_LOG=warn NUDGE_LISTEN=127.0.0.1:3000 \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/nudge_bench \
  NUDGE_SLACK_SIGNING_SECRET=anchor-secret NUDGE_SLACK_BOT_TOKEN=xoxb-bench-token NUDGE_SLACK_DROP_REPEATS=false \
  NUDGE_SLACK_API_URL=http://127.0.0.1:9/api $root/target/release/nudge"
export PROJECT_PORT=3000 PROJECT_PATH=/slack/commands PROJECT_SECRET=anchor-secret
bash "$anchors/bench.sh" "$rounds" "$seconds" | tee /tmp/nudge-bench.txt

# Medians per target and the ratios the Slack issue sets as targets.
python3 - /tmp/nudge-bench.txt <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r'(\S+)\s+rps=(\S+)\s+p50=(\S+)\s+p99=(\S+)\s+peakRSS_kB=(\S+)', line)
    if m:
        p99 = m[4]
        p99_ms = float(p99[:-2]) if p99.endswith('ms') else float(p99[:-2]) / 1000 if p99.endswith('us') else float(p99[:-1]) * 1000
        rows.setdefault(m[1], []).append((float(m[2] or 0), p99_ms, int(m[5] or 0)))
med = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
print("\nmedians (requests/s, peak RSS):")
for k, v in rows.items():
    p99 = statistics.median(r[1] for r in v)
    print(f"  {k:14} {med[k]:>10.0f} rps   p99 {p99:>7.2f} ms   peak RSS {max(r[2] for r in v)/1024:.1f} MB")
def ratio(a, b):
    return med.get(a, 0) / med[b] if med.get(b) else float('nan')
def p99(name):
    return statistics.median(r[1] for r in rows[name]) if name in rows else float('nan')
print("\ntargets (ratios in this run):")
print(f"  /nudge help vs axum-min ack-only              {ratio('project-db0','axummin-db0'):6.2f}x  (target >= 0.9x)")
print(f"  /nudge help vs Bolt-JS ack-only               {ratio('project-db0','bolt-db0'):6.1f}x  (target >= 12x)")
print(f"  /experiment propose vs axum-min + insert      {ratio('project-db1','axummin-db1'):6.2f}x  (target >= 1x)")
print(f"  /experiment propose vs Bolt-JS + insert       {ratio('project-db1','bolt-db1'):6.1f}x  (target >= 2x)")
print(f"  propose over 100 workspaces vs axum-min + insert {ratio('project-db2','axummin-db1'):6.2f}x  (target >= 1.5x)")
print(f"  propose p99 {p99('project-db1'):.2f} ms vs axum-min + insert p99 {p99('axummin-db1'):.2f} ms (target: no higher)")
rss = max(r[2] for k in rows if k.startswith('project') for r in rows[k]) / 1024 if any(k.startswith('project') for k in rows) else 0
print(f"  nudge peak RSS                                {rss:6.1f} MB (target <= 20 MB)")
PY
