#!/usr/bin/env bash
# zapin vs Baileys on the same machine against ONE simulator process, in one run:
#   benches/side-by-side.sh K [STATE_DIR]
#
# 1. starts the simulator alone (`sessions-bench --sim-child DIR`, i.e. `zapin_sim::run` with
#    seed 7, default timers) and keeps it up for the whole run;
# 2. K Baileys clients in one Node process (benches/baileys-sessions.mjs: unmodified
#    baileys@7.0.0-rc14 from tests/interop/node_modules, root key swapped at run time);
# 3. K zapin engine sessions in one Rust process (`sessions-bench --n K --sim …`);
# both: pair by QR through the control API, settle, RSS, IDLE_SECS of idle CPU, then ROUNDS
# message rounds (one text from a sim phone to every session, one text from every session to a
# sim phone, MSG_CONCURRENCY in flight). Prints a table and writes DIR/side-by-side.json.
#
# Env: IDLE_SECS (20), ROUNDS (2), MSG_CONCURRENCY (64), PAIR_CONCURRENCY (Baileys, 4; zapin 32),
#      AUTH_DIR (Baileys' auth files; default a fresh dir in /dev/shm, removed at exit),
#      SESSIONS_BENCH (path of the release binary; default $CARGO_TARGET_DIR/release/sessions-bench),
#      SIM_BENCH (the binary whose simulator to run; default SESSIONS_BENCH: set it to compare two
#      engine builds against the same simulator),
#      ZAPIN_SERVE (a release `zapin` binary: also run K instances of `zapin serve` through the HTTP
#      API, sendText with MSG_CONCURRENCY in flight, with http-send-bench from the same target dir;
#      STRACE=1 counts its fsyncs).
# Build first:  cargo build --release -p zapin-benches --bin sessions-bench
# Node: tests/interop/node_modules must exist (`cd tests/interop && npm ci`).
set -euo pipefail
K=${1:?usage: side-by-side.sh K [STATE_DIR]}
DIR=${2:-$(mktemp -d /tmp/zapin-side-by-side.XXXXXX)}
BIN=${SESSIONS_BENCH:-${CARGO_TARGET_DIR:-target}/release/sessions-bench}
SIM_BIN=${SIM_BENCH:-$BIN}
IDLE_SECS=${IDLE_SECS:-20}
ROUNDS=${ROUNDS:-2}
MSG_CONCURRENCY=${MSG_CONCURRENCY:-64}
PAIR_CONCURRENCY=${PAIR_CONCURRENCY:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
INTEROP="$HERE/../tests/interop"
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p zapin-benches --bin sessions-bench" >&2; exit 2; }
[ -d "$INTEROP/node_modules/baileys" ] || { echo "no $INTEROP/node_modules: npm ci there" >&2; exit 2; }
mkdir -p "$DIR/sim"
# Baileys' auth files (~850 per client) on a tmpfs when there is one: a busy disk would otherwise
# make Baileys' pairing disk-bound. Neither side's store files count as RSS.
AUTH_DIR=${AUTH_DIR:-$( [ -w /dev/shm ] && mktemp -d /dev/shm/zapin-sbs-auth.XXXXXX || echo "$DIR/baileys-auth")}
mkdir -p "$AUTH_DIR"
ulimit -n 20000 2>/dev/null || true

# The simulator runs until its stdin closes; the coprocess pipe is that stdin.
coproc SIM { exec "$SIM_BIN" --sim-child "$DIR/sim" 2> "$DIR/sim.stderr"; }
SIM_PID=$SIM_PID
trap 'eval "exec ${SIM[1]}>&-"; wait "$SIM_PID" 2>/dev/null || true; rm -rf "$AUTH_DIR"' EXIT
read -r -t 60 -u "${SIM[0]}" READY HTTP WS ROOT || { echo "simulator did not start" >&2; exit 1; }
[ "$READY" = READY ] || { echo "unexpected simulator line: $READY $HTTP" >&2; exit 1; }
echo "simulator pid $SIM_PID at $HTTP; state $DIR; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo "== Baileys: K=$K" >&2
(cd "$INTEROP" && ZAPIN_SIM_HTTP=$HTTP SIM_PID=$SIM_PID AUTH_DIR=$AUTH_DIR K=$K IDLE_SECS=$IDLE_SECS ROUNDS=$ROUNDS \
	MSG_CONCURRENCY=$MSG_CONCURRENCY PAIR_CONCURRENCY=$PAIR_CONCURRENCY \
	node --expose-gc "$HERE/baileys-sessions.mjs") > "$DIR/baileys.json"

echo "== zapin: N=$K" >&2
"$BIN" --n "$K" --state-dir "$DIR" --sim "$HTTP" --sim-pid "$SIM_PID" --idle-secs "$IDLE_SECS" \
	--rounds "$ROUNDS" --msg-concurrency "$MSG_CONCURRENCY" --skip-disconnect > "$DIR/zapin.json"

echo '{}' > "$DIR/http.json"
if [ -n "${ZAPIN_SERVE:-}" ]; then
	echo "== zapin serve over HTTP: K=$K" >&2
	HTTP_BENCH=$(dirname "$BIN")/http-send-bench
	"$HTTP_BENCH" --zapin "$ZAPIN_SERVE" --instances "$K" --rounds "$ROUNDS" --concurrency "$MSG_CONCURRENCY" \
		--sim "$HTTP" "$WS" "$ROOT" ${STRACE:+--strace} --state-dir "$DIR/http" --json "$DIR/http.json" > /dev/null
fi

python3 - "$DIR/zapin.json" "$DIR/baileys.json" "$DIR/side-by-side.json" "$DIR/http.json" <<'PY'
import json, sys
z = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2])); h = json.load(open(sys.argv[4]))
def ratio(a, c): return round(a / c, 1) if a and c else None
zr = z["engine_rss_kib"]["per_session"]
br, brg = b["rss_kib"]["per_session"], b["rss_kib"]["per_session_after_gc"]
zm, bm = z["messages"], b["messages"]
def col(rounds, side, key, r):
    return rounds[r][side][key] if len(rounds) > r else None
rows = [
    ("sessions open", z["n"] - z["connect"]["failed"], b["connect"]["opened"], None),
    ("connect all (s)", z["connect"]["secs"], b["connect"]["secs"], None),
    ("RSS/session KiB", zr, br, ratio(br, zr)),
    ("RSS/session KiB, Baileys after GC", zr, brg, ratio(brg, zr)),
    ("RSS/session KiB after the messages", zam := round((z["engine_rss_kib"].get("after_messages", 0) - z["engine_rss_kib"]["baseline"]) / z["n"], 2),
     bam := b["rss_kib"].get("per_session_after_messages"), ratio(bam, zam)),
    ("total RSS MiB (process)", round(z["engine_rss_kib"]["connected"] / 1024, 1), round(b["rss_kib"]["connected"] / 1024, 1), None),
    ("idle CPU % of a core", z["idle"]["engine_cpu_pct_of_one_core"], b["idle"]["baileys_cpu_pct_of_one_core"],
     ratio(b["idle"]["baileys_cpu_pct_of_one_core"], z["idle"]["engine_cpu_pct_of_one_core"])),
]
for r in range(max(len(zm), len(bm))):
    zi, bi = col(zm, "sim_phone_to_engine", "msgs_per_sec", r), col(bm, "sim_phone_to_client", "msgs_per_sec", r)
    zo, bo = col(zm, "engine_to_sim_phone", "delivered_per_sec", r), col(bm, "client_to_sim_phone", "delivered_per_sec", r)
    zip50 = col(zm, "sim_phone_to_engine", "p50_ms", r); bip50 = col(bm, "sim_phone_to_client", "p50_ms", r)
    zip99 = col(zm, "sim_phone_to_engine", "p99_ms", r); bip99 = col(bm, "sim_phone_to_client", "p99_ms", r)
    zout = zm[r]["engine_to_sim_phone"] if len(zm) > r else {}
    bout = bm[r]["client_to_sim_phone"] if len(bm) > r else {}
    def p(side, key):
        s = side.get(key) or {}
        return f"{s.get('p50_ms')} / {s.get('p99_ms')}"
    rows += [
        (f"round {r} in: msgs/s", zi, bi, ratio(zi, bi)),
        (f"round {r} in: p50 / p99 ms", f"{zip50} / {zip99}", f"{bip50} / {bip99}", None),
        (f"round {r} out: delivered/s", zo, bo, ratio(zo, bo)),
        # Send call returned (zapin send_text, Baileys sendMessage: stanza written).
        (f"round {r} out: send returned p50 / p99 ms", p(zout, "send_resolved"), p(bout, "send_message_resolved"), None),
        # The server's <ack class=message> for the stanza.
        (f"round {r} out: server ack p50 / p99 ms", p(zout, "server_ack"), p(bout, "server_ack"), None),
        (f"round {r} out: delivery receipt p50 / p99 ms", p(zout, "delivery_receipt"), p(bout, "delivery_receipt"), None),
        (f"round {r} out: zapin store commits per send", zout.get("store_commits_per_msg"), None, None),
    ]
    hr = h.get("results", [])
    if len(hr) > r:
        ha, hs = hr[r]["answer"], hr[r]["server_ack_webhook"]
        rows += [
            # zapin serve: POST /message/sendText -> 201 (reserved, ratchet durable, written).
            (f"round {r} out via HTTP: 201 p50 / p99 ms", f"{ha.get('p50_ms')} / {ha.get('p99_ms')}", p(bout, "send_message_resolved"), None),
            # ... -> the SERVER_ACK messages.update at a webhook receiver (Baileys: the ack frame).
            (f"round {r} out via HTTP: server ack at webhook p50 / p99 ms", f"{hs.get('p50_ms')} / {hs.get('p99_ms')}", p(bout, "server_ack"), None),
        ]
if h.get("fsyncs_per_send") is not None:
    rows.append(("zapin serve fsyncs per send (all files)", h["fsyncs_per_send"], None, None))
print(f"K = {z['n']}  (load avg zapin {z['loadavg_start']} -> {z['loadavg_end']}, Baileys {b['loadavg_start']} -> {b['loadavg_end']})")
print(f"| {'metric':<36} | {'zapin':>14} | {'Baileys':>14} | ratio |")
print(f"|{'-'*38}|{'-'*16}|{'-'*16}|-------|")
for name, zv, bv, rt in rows:
    print(f"| {name:<36} | {str(zv):>14} | {str(bv):>14} | {'' if rt is None else str(rt) + 'x':>5} |")
print("ratio = Baileys/zapin for RSS and CPU, zapin/Baileys for rates (higher = zapin better)")
json.dump({"k": z["n"], "rows": [{"metric": n, "zapin": zv, "baileys": bv, "ratio": rt} for n, zv, bv, rt in rows],
           "zapin": z, "baileys": b, "zapin_http": h}, open(sys.argv[3], "w"))
PY
echo "full summaries: $DIR/zapin.json $DIR/baileys.json $DIR/side-by-side.json" >&2
