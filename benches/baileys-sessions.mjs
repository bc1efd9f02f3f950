// Baileys side of the sessions bench: K unmodified baileys@7.0.0-rc14 clients in ONE Node process
// (as Evolution API runs them) against a running zapin simulator, paired through the same QR flow
// as sessions-bench. Phases, as in sessions-bench: connect (pair) → settle → RSS → idle CPU →
// message rounds (sim phone → client, client → sim phone). Progress on stderr, one JSON summary
// line on stdout.
//
// The only change to Baileys is at run time, as in tests/interop/baileys-sim.mjs: the root key
// (WA_CERT_DETAILS.PUBLIC_KEY) is the simulator's, and `waWebSocketUrl` points at the simulator.
//
// Memory: per-session RSS = (process RSS with K clients open − RSS of the same process before the
// first socket, Baileys already imported) / K. Both readings are taken after a settle window and,
// when node runs with --expose-gc, again after a full GC (`rss_kib.*_after_gc`): the GC'd figure is
// the one most favourable to Baileys and is the headline in side-by-side.sh.
//
// Run from tests/interop (for node_modules):
//   ZAPIN_SIM_HTTP=http://127.0.0.1:PORT K=100 node --expose-gc ../../benches/baileys-sessions.mjs
// Env: K (clients, default 100), PAIR_CONCURRENCY (default 4), MSG_CONCURRENCY (default 64),
//      IDLE_SECS (default 20), ROUNDS (default 2), SETTLE_SECS (default 5),
//      OPEN_TIMEOUT_SECS (per client, default 120), ROUND_TIMEOUT_SECS (default 120),
//      PHONE_PREFIX (default 1999; accounts are PREFIX + 7 digits), PEER (default 18880000001),
//      SIM_PID (optional: the simulator's pid, for its RSS/CPU columns),
//      AUTH_DIR (where Baileys' auth files go, default the OS temp dir).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

// Resolve Baileys from the working directory (tests/interop/node_modules), not from benches/.
const baileysPath = createRequire(path.join(process.cwd(), 'noop.js')).resolve('baileys')
const baileys = await import(pathToFileURL(baileysPath).href)
const { WA_CERT_DETAILS, useMultiFileAuthState, Browsers, DisconnectReason } = baileys
const makeWASocket = baileys.default ?? baileys.makeWASocket ?? baileys
const baileysVersion = JSON.parse(fs.readFileSync(path.join(baileysPath.slice(0, baileysPath.lastIndexOf('/lib/')), 'package.json'), 'utf8')).version

const env = (name, dflt) => Number(process.env[name] ?? dflt)
const http = process.env.ZAPIN_SIM_HTTP
if (!http) { console.error('set ZAPIN_SIM_HTTP'); process.exit(2) }
const K = env('K', 100)
const PAIR_CONCURRENCY = env('PAIR_CONCURRENCY', 4)
const MSG_CONCURRENCY = env('MSG_CONCURRENCY', 64)
const IDLE_SECS = env('IDLE_SECS', 20)
const ROUNDS = env('ROUNDS', 2)
const SETTLE_SECS = env('SETTLE_SECS', 5)
const OPEN_TIMEOUT_MS = env('OPEN_TIMEOUT_SECS', 120) * 1000
const ROUND_TIMEOUT_MS = env('ROUND_TIMEOUT_SECS', 120) * 1000
const PREFIX = process.env.PHONE_PREFIX ?? '1999'
const PEER = process.env.PEER ?? '18880000001'
const SIM_PID = process.env.SIM_PID ?? ''

// libsignal (inside Baileys) logs with console.log; stdout is kept for the summary.
const out = (s) => process.stdout.write(s + '\n')
console.log = () => {}
console.info = () => {}
const noop = () => {}
const warnings = []
const keep = (level) => (...a) => { if (warnings.length < 20) warnings.push(level + ' ' + a.map((x) => typeof x === 'object' ? JSON.stringify(x) : String(x)).join(' ').slice(0, 300)) }
const logger = { level: 'warn', child() { return this }, trace: noop, debug: noop, info: noop, warn: noop, error: keep('error'), fatal: keep('fatal') }
const NO_RECONNECT = new Set([DisconnectReason.loggedOut, DisconnectReason.forbidden, DisconnectReason.connectionReplaced])

async function api(method, p, body) {
	const r = await fetch(http + p, {
		method,
		headers: body === undefined ? {} : { 'content-type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body)
	})
	const text = await r.text()
	let parsed = null
	try { parsed = text ? JSON.parse(text) : null } catch { parsed = text }
	return { status: r.status, body: parsed }
}

// ---- measurements

const gc = globalThis.gc
const rssKiB = () => Math.round(process.memoryUsage().rss / 1024)
const heapKiB = () => Math.round(process.memoryUsage().heapUsed / 1024)
function procRssKiB(pid) {
	try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) } catch { return 0 }
}
function procCpuTicks(pid) {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
		const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
		return Number(f[11]) + Number(f[12])
	} catch { return 0 }
}
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ')
const round2 = (x) => Math.round(x * 100) / 100
const pct = (s, p) => s.length ? round2(s[Math.min(s.length - 1, Math.round((s.length - 1) * p))]) : null
function summary(v) {
	const s = [...v].sort((a, b) => a - b)
	return { count: s.length, p50_ms: pct(s, 0.5), p99_ms: pct(s, 0.99), max_ms: pct(s, 1) }
}
const delay = (ms) => new Promise((r) => setTimeout(r, ms))
/** A memory reading: after `SETTLE_SECS` (a measuring window, nothing waits on it), then after GC. */
async function memory() {
	await delay(SETTLE_SECS * 1000)
	const r = { rss: rssKiB(), heap: heapKiB() }
	if (gc) { gc(); gc(); await delay(200); r.rss_gc = rssKiB(); r.heap_gc = heapKiB() }
	return r
}

let lastShow = 0
function progress(label, done, total) {
	const now = Date.now()
	if (now - lastShow < 250 && done < total) return
	lastShow = now
	const w = 30, f = Math.floor(done * w / Math.max(total, 1))
	process.stderr.write(`\r${label.padEnd(12)} [${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${total} `)
	if (done >= total) process.stderr.write('\n')
}

/** Runs fn(0..n-1) with at most `limit` in flight; returns the error messages. */
async function pool(n, limit, fn) {
	let next = 0
	const errors = []
	async function worker() {
		while (next < n) {
			const i = next++
			try { await fn(i) } catch (e) { errors.push(String(e?.message ?? e)) }
		}
	}
	await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
	return errors
}

// ---- what the clients saw (every waiter re-checks its condition on `changed`)

const seen = new EventEmitter()
seen.setMaxListeners(0)
const received = new Map() // inbound text -> arrival time
const statuses = new Map() // own message id -> { delivered: time }
const serverAcks = new Map() // own message id -> time of the server's <ack class=message>
/** Resolves true once pred() holds, false at the timeout; wakes on every `changed`. */
function waitUntil(pred, ms) {
	return new Promise((resolve) => {
		if (pred()) return resolve(true)
		const done = (v) => { clearTimeout(timer); seen.off('changed', check); resolve(v) }
		const check = () => { if (pred()) done(true) }
		const timer = setTimeout(() => done(pred()), ms)
		seen.on('changed', check)
	})
}
const textOf = (m) => m?.conversation || m?.extendedTextMessage?.text || undefined
function noteStatus(id, status) {
	if (status >= 3 && !statuses.get(id)?.delivered) {
		statuses.set(id, { delivered: Date.now() })
		seen.emit('changed')
	}
}

// ---- one client: a phone account and the Baileys socket(s) linked to it

// Baileys' multi-file auth state writes ~850 files per client (812 prekeys); on a busy disk that
// (and deleting them) dominates pairing time, so AUTH_DIR may point at a tmpfs. Files are not
// process RSS either way. A dir under AUTH_DIR is left for the caller to delete.
const tmp = fs.mkdtempSync(path.join(process.env.AUTH_DIR ?? os.tmpdir(), 'zapin-baileys-bench-'))
const phoneOf = (i) => PREFIX + String(i).padStart(7, '0')
const stats = { reconnects: 0, closes_by_status: {}, scans: 0 }

class Client {
	constructor(i) {
		this.i = i
		this.phone = phoneOf(i)
		this.dir = path.join(tmp, String(i))
		this.sock = null
		this.open = false
		this.opens = 0
		this.scanned = false
		this.stopped = false
		this.failure = null
		this.generation = 0
	}

	async connect() {
		if (this.stopped) return
		const generation = ++this.generation
		const { state, saveCreds } = await useMultiFileAuthState(this.dir)
		if (this.stopped || generation !== this.generation) return
		const sock = makeWASocket({
			auth: state, waWebSocketUrl: http.replace(/^http/, 'ws') + '/ws/chat', logger,
			browser: Browsers.ubuntu('Chrome'), printQRInTerminal: false, markOnlineOnConnect: false,
			syncFullHistory: false, generateHighQualityLinkPreview: false,
			// The mock phones send no history sync; Baileys' default would buffer every event for
			// 20 s after the first login waiting for one.
			shouldSyncHistoryMessage: () => false
		})
		this.sock = sock
		const current = () => this.sock === sock
		sock.ev.on('creds.update', saveCreds)
		sock.ev.on('messages.upsert', ({ messages }) => {
			for (const m of messages) {
				if (m.key.fromMe) {
					// Baileys' event buffer folds a receipt that arrives while our own message is
					// still buffered into its upsert instead of a messages.update.
					noteStatus(m.key.id, m.status ?? 0)
					continue
				}
				const text = textOf(m.message)
				if (text && !received.has(text)) { received.set(text, Date.now()); seen.emit('changed') }
			}
		})
		sock.ev.on('messages.update', (ups) => { for (const u of ups) noteStatus(u.key.id, u.update?.status ?? 0) })
		// Baileys reports no event for a successful server ack; its socket emits every frame by
		// tag, so the ack is seen here, at the same point where zapin's engine reports ServerAck.
		sock.ws.on('CB:ack,class:message', (node) => {
			const id = node?.attrs?.id
			if (id && !serverAcks.has(id)) serverAcks.set(id, Date.now())
		})
		sock.ev.on('connection.update', (u) => {
			if (!current()) return
			if (u.qr && !this.scanned && !sock.authState.creds.me) {
				this.scanned = true
				api('POST', `/sim/accounts/${this.phone}/scan`, { qr: u.qr }).then((r) => {
					stats.scans++
					if (r.status !== 200) this.fail(new Error(`scan ${this.i}: ${r.status} ${JSON.stringify(r.body)}`))
				}, (e) => this.fail(e))
			}
			if (u.connection === 'open') { this.open = true; this.opens++; seen.emit('changed') }
			if (u.connection === 'close') {
				this.open = false
				const status = u.lastDisconnect?.error?.output?.statusCode
				stats.closes_by_status[status ?? 'none'] = (stats.closes_by_status[status ?? 'none'] ?? 0) + 1
				seen.emit('changed')
				if (this.stopped) return
				if (NO_RECONNECT.has(status)) return this.fail(new Error(`client ${this.i} closed with ${status}`))
				// After pairing Baileys closes with 515 and must reconnect at once (its example
				// does); any other close is retried after 250 ms, as an application would.
				if (status !== DisconnectReason.restartRequired) stats.reconnects++
				const g = this.generation
				setTimeout(() => { if (g === this.generation) this.connect().catch((e) => this.fail(e)) },
					status === DisconnectReason.restartRequired ? 0 : 250)
			}
		})
	}

	fail(e) { if (!this.failure) { this.failure = e; seen.emit('changed') } }

	/** Pairs (or logs in) and resolves at the first `open`; rejects on failure or timeout. */
	async start() {
		await api('POST', '/sim/accounts', { phone: this.phone, push_name: `Bench ${this.i}` })
		await this.connect()
		const ok = await waitUntil(() => this.opens > 0 || this.failure, OPEN_TIMEOUT_MS)
		if (this.failure) throw this.failure
		if (!ok) throw new Error(`client ${this.i} not open within ${OPEN_TIMEOUT_MS} ms`)
		// As an application does after linking: its name, and `available` so Baileys sends real
		// (not `inactive`) delivery receipts (wa-protocol.md §12.3).
		const me = this.sock.authState.creds.me
		this.sock.ev.emit('creds.update', { me: { ...me, name: `Bench ${this.i}` } })
		await this.sock.sendPresenceUpdate('available')
	}

	stop() { this.stopped = true; this.generation++; try { this.sock?.end(undefined) } catch {} }
}

// ---- the bench

const started = Math.floor(Date.now() / 1000)
const loadStart = loadavg()
const root = (await api('GET', '/sim/root-key')).body.public_key_hex
WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(root, 'hex')
const peer = await api('POST', '/sim/accounts', { phone: PEER, push_name: 'Peer' })
if (peer.status !== 201 && peer.status !== 409) throw new Error(`peer account: ${peer.status}`)

const base = await memory()
const simBase = procRssKiB(SIM_PID)
const clients = Array.from({ length: K }, (_, i) => new Client(i))
const t0 = Date.now()
let opened = 0
const pairErrors = await pool(K, PAIR_CONCURRENCY, async (i) => {
	await clients[i].start()
	progress('connect', ++opened, K)
})
const connectSecs = (Date.now() - t0) / 1000
process.stderr.write(`\nconnected ${opened}/${K} in ${connectSecs.toFixed(1)} s (${pairErrors.length} failed) ${pairErrors.slice(0, 2).join('; ')}\n`)

const conn = await memory()
const simConn = procRssKiB(SIM_PID)
const perSession = (a, b) => round2((b - a) / K)
process.stderr.write(`Baileys RSS ${conn.rss} KiB (baseline ${base.rss}): ${perSession(base.rss, conn.rss)} KiB/session` +
	(gc ? `; after GC ${conn.rss_gc} (baseline ${base.rss_gc}): ${perSession(base.rss_gc, conn.rss_gc)} KiB/session` : '') + '\n')

// Idle: CPU over a window with every client connected (keepalives only).
const cpu0 = process.cpuUsage(), sim0 = procCpuTicks(SIM_PID), w0 = Date.now()
await delay(IDLE_SECS * 1000)
const idleWall = (Date.now() - w0) / 1000
const cpu1 = process.cpuUsage(cpu0)
const idleCpuPct = round2((cpu1.user + cpu1.system) / 1e6 / idleWall * 100)
const simIdleCpuPct = SIM_PID ? round2((procCpuTicks(SIM_PID) - sim0) / 100 / idleWall * 100) : null
const openAfterIdle = clients.filter((c) => c.open).length
const rssAfterIdle = rssKiB()
process.stderr.write(`idle ${idleWall.toFixed(0)} s: Baileys CPU ${idleCpuPct}% of a core, sim ${simIdleCpuPct}%; ${openAfterIdle} open; RSS ${rssAfterIdle} KiB\n`)

const live = clients.filter((c) => c.opens > 0 && !c.failure)

/** The peer phone sends one text to every client; latency to that client's messages.upsert. */
async function inbound(round) {
	const sent = new Map()
	const t = Date.now()
	const errs = await pool(live.length, MSG_CONCURRENCY, async (j) => {
		const text = `baileys-in-${round}-${live[j].i}`
		sent.set(text, Date.now())
		const r = await api('POST', `/sim/accounts/${PEER}/messages`, { to: `${live[j].phone}@s.whatsapp.net`, text })
		if (r.status !== 200) { sent.delete(text); throw new Error(`send ${r.status} ${JSON.stringify(r.body)}`) }
	})
	const all = await waitUntil(() => { for (const k of sent.keys()) if (!received.has(k)) return false; return true }, ROUND_TIMEOUT_MS)
	const lat = []; let last = t
	for (const [k, at] of sent) { const r = received.get(k); if (r) { lat.push(r - at); last = Math.max(last, r) } }
	return { ...summary(lat), sent: live.length, send_errors: errs.length, received: lat.length, all,
		msgs_per_sec: round2(lat.length / Math.max((last - t) / 1000, 1e-9)), first_errors: errs.slice(0, 2) }
}

/** Every client sends one text to the peer phone; latency of sendMessage and to the phone's delivery receipt. */
async function outbound(round) {
	const sent = new Map()
	const sendLat = []
	const t = Date.now()
	const errs = await pool(live.length, MSG_CONCURRENCY, async (j) => {
		const at = Date.now()
		const m = await live[j].sock.sendMessage(`${PEER}@s.whatsapp.net`, { text: `baileys-out-${round}-${live[j].i}` })
		sendLat.push(Date.now() - at)
		sent.set(m.key.id, at)
	})
	const all = await waitUntil(() => { for (const k of sent.keys()) if (!statuses.get(k)?.delivered) return false; return true }, ROUND_TIMEOUT_MS)
	const lat = []; let last = t
	for (const [k, at] of sent) { const d = statuses.get(k)?.delivered; if (d) { lat.push(d - at); last = Math.max(last, d) } }
	const acks = []
	for (const [k, at] of sent) { const a = serverAcks.get(k); if (a) acks.push(a - at) }
	return { sent: sent.size, send_errors: errs.length, all_delivered: all, send_message_resolved: summary(sendLat),
		server_ack: summary(acks), delivery_receipt: summary(lat), delivered_per_sec: round2(lat.length / Math.max((last - t) / 1000, 1e-9)),
		first_errors: errs.slice(0, 2) }
}

const rounds = []
for (let r = 0; r < ROUNDS; r++) {
	const sim_phone_to_client = await inbound(r)
	const client_to_sim_phone = await outbound(r)
	process.stderr.write(`round ${r}: in ${JSON.stringify(sim_phone_to_client)}\n         out ${JSON.stringify(client_to_sim_phone)}\n`)
	rounds.push({ round: r, sim_phone_to_client, client_to_sim_phone })
}

// Working-set reading without a forced GC, after the traffic.
const rssAfterMessages = rssKiB()
const simStats = (await api('GET', '/sim/stats').catch(() => ({ body: null }))).body
out(JSON.stringify({
	bench: 'baileys-sessions', baileys: baileysVersion, node: process.version, k: K,
	started_unix: started, pair_concurrency: PAIR_CONCURRENCY, msg_concurrency: MSG_CONCURRENCY,
	loadavg_start: loadStart, loadavg_end: loadavg(),
	connect: { secs: round2(connectSecs), opened, failed: pairErrors.length, first_errors: pairErrors.slice(0, 3) },
	rss_kib: {
		baseline: base.rss, connected: conn.rss, per_session: perSession(base.rss, conn.rss),
		baseline_after_gc: base.rss_gc ?? null, connected_after_gc: conn.rss_gc ?? null,
		per_session_after_gc: gc ? perSession(base.rss_gc, conn.rss_gc) : null,
		after_idle: rssAfterIdle, after_messages: rssAfterMessages,
		per_session_after_messages: perSession(base.rss, rssAfterMessages),
		heap_used_baseline: base.heap, heap_used_connected: conn.heap, heap_used_connected_after_gc: conn.heap_gc ?? null
	},
	sim_rss_kib: { baseline: simBase, connected: simConn },
	idle: { secs: round2(idleWall), baileys_cpu_pct_of_one_core: idleCpuPct, sim_cpu_pct_of_one_core: simIdleCpuPct, open_at_end: openAfterIdle },
	reconnects: stats.reconnects, closes_by_status: stats.closes_by_status, scans: stats.scans,
	messages: rounds, baileys_errors: warnings, sim_stats: simStats
}))
for (const c of clients) c.stop()
if (!process.env.AUTH_DIR) fs.rmSync(tmp, { recursive: true, force: true })
process.exit(0)
