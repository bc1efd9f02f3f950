#!/usr/bin/env bash
# zapin vs Baileys on the same machine against ONE simulator process, in one run:
#   benches/side-by-side.sh K [STATE_DIR]
# Starts `sessions-bench --sim-child` (the simulator alone), runs K Baileys clients in one Node
# process against it (benches/baileys-sessions.mjs, unmodified baileys@7.0.0-rc14 from
# tests/interop/node_modules, root key swapped at run time), then `sessions-bench --n K --sim …`
# (K engine sessions in one Rust process) against the same simulator, and prints both JSON
# summaries and the ratios. Needs the release binary:
#   CARGO_TARGET_DIR=/work/targets/bench7 cargo build --release -p zapin-benches --bin sessions-bench
set -euo pipefail
K=${1:?usage: side-by-side.sh K [STATE_DIR]}
DIR=${2:-$(mktemp -d /tmp/zapin-side-by-side.XXXXXX)}
BIN=${SESSIONS_BENCH:-${CARGO_TARGET_DIR:-target}/release/sessions-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR/sim"
ulimit -n 20000 || true

# The simulator stays up while its stdin (a fifo we hold open) is open.
mkfifo "$DIR/sim.stdin"
"$BIN" --sim-child "$DIR/sim" < "$DIR/sim.stdin" > "$DIR/sim.ready" &
SIM_PID=$!
exec 9> "$DIR/sim.stdin"
trap 'exec 9>&-; wait $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -s "$DIR/sim.ready" ] && break; sleep 0.1; done
HTTP=$(awk '{print $2}' "$DIR/sim.ready")
echo "simulator pid $SIM_PID at $HTTP; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

(cd "$HERE/../tests/interop" && ZAPIN_SIM_HTTP=$HTTP K=$K node "$HERE/baileys-sessions.mjs") > "$DIR/baileys.json"
"$BIN" --n "$K" --state-dir "$DIR" --sim "$HTTP" --sim-pid "$SIM_PID" --idle-secs 20 --rounds 2 > "$DIR/zapin.json"

python3 - "$DIR/zapin.json" "$DIR/baileys.json" <<'PY'
import json, sys
z = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
zr, br = z["engine_rss_kib"]["per_session"], b["rss_kib"]["per_session"]
zin = z["messages"][-1]["sim_phone_to_engine"]["msgs_per_sec"]
bin_ = b["messages"][-1]["sim_phone_to_client"]["msgs_per_sec"]
zout = z["messages"][-1]["engine_to_sim_phone"]["delivered_per_sec"]
bout = b["messages"][-1]["client_to_sim_phone"]["delivered_per_sec"]
row = {"k": z["n"], "rss_kib_per_session": {"zapin": zr, "baileys": br, "baileys_over_zapin": round(br / zr, 2) if zr else None},
       "in_msgs_per_sec_round1": {"zapin": zin, "baileys": bin_},
       "out_delivered_per_sec_round1": {"zapin": zout, "baileys": bout},
       "connect_secs": {"zapin": z["connect"]["secs"], "baileys": b["connect"]["secs"]}}
print(json.dumps(row))
PY
echo "full summaries: $DIR/zapin.json $DIR/baileys.json" >&2
