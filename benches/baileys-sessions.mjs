// Baileys side of the sessions bench: K unmodified baileys@7.0.0-rc14 clients in ONE Node process
// against a running zapin simulator, paired through the same QR flow as sessions-bench. Reports
// RSS per session (process RSS after all are open minus RSS before the first socket) and one
// message round each way, as one JSON line on stdout (progress on stderr).
//
// The only change to Baileys is at run time, as in tests/interop/baileys-sim.mjs: the root key
// (WA_CERT_DETAILS.PUBLIC_KEY) is the simulator's, and `waWebSocketUrl` points at the simulator.
//
// Run from tests/interop (for node_modules):
//   ZAPIN_SIM_HTTP=http://127.0.0.1:PORT K=100 node ../../benches/baileys-sessions.mjs
// Env: K (clients, default 100), PAIR_CONCURRENCY (default 16), MSG_CONCURRENCY (default 64),
//      PHONE_PREFIX (default 1999; accounts are PREFIX + 7 digits), PEER (default 18880000001).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

// Resolve Baileys from the working directory (tests/interop/node_modules), not from benches/.
const baileysPath = createRequire(path.join(process.cwd(), 'noop.js')).resolve('baileys')
const baileys = await import(pathToFileURL(baileysPath).href)
const { WA_CERT_DETAILS, useMultiFileAuthState, Browsers } = baileys

const makeWASocket = baileys.default ?? baileys.makeWASocket ?? baileys
const http = process.env.ZAPIN_SIM_HTTP
if (!http) { console.error('set ZAPIN_SIM_HTTP'); process.exit(2) }
const K = Number(process.env.K ?? 100)
const PAIR_CONCURRENCY = Number(process.env.PAIR_CONCURRENCY ?? 16)
const MSG_CONCURRENCY = Number(process.env.MSG_CONCURRENCY ?? 64)
const PREFIX = process.env.PHONE_PREFIX ?? '1999'
const PEER = process.env.PEER ?? '18880000001'
// libsignal logs with console.log; keep stdout for the summary.
const out = console.log.bind(console)
console.log = () => {}
console.info = () => {}
const noop = () => {}
const logger = { level: 'silent', child() { return this }, trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop }

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

const root = (await api('GET', '/sim/root-key')).body.public_key_hex
WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(root, 'hex')
const wsUrl = http.replace(/^http/, 'ws') + '/ws/chat'
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zapin-baileys-bench-'))
const phoneOf = (i) => PREFIX + String(i).padStart(7, '0')
const rssKiB = () => Math.round(process.memoryUsage().rss / 1024)
const pct = (v, p) => { if (!v.length) return null; const s = [...v].sort((a, b) => a - b); return Math.round(s[Math.min(s.length - 1, Math.round((s.length - 1) * p))] * 100) / 100 }
const summary = (v) => ({ count: v.length, p50_ms: pct(v, 0.5), p99_ms: pct(v, 0.99), max_ms: pct(v, 1) })
let lastShow = 0
function progress(label, done, total) {
	const now = Date.now()
	if (now - lastShow < 250 && done < total) return
	lastShow = now
	const w = 30, f = Math.floor(done * w / total)
	process.stderr.write(`\r${label.padEnd(12)} [${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${total} `)
	if (done >= total) process.stderr.write('\n')
}

async function pool(n, limit, fn) {
	let next = 0, done = 0
	const errors = []
	async function worker() {
		while (next < n) {
			const i = next++
			try { await fn(i) } catch (e) { errors.push(String(e?.message ?? e)) }
			done++
		}
	}
	await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
	return errors
}

await api('POST', '/sim/accounts', { phone: PEER, push_name: 'Peer' })
const received = new Map() // text -> time
const delivered = new Map() // id -> time
const socks = []
const baseline = rssKiB()
const t0 = Date.now()
let opened = 0
const pairErrors = await pool(K, PAIR_CONCURRENCY, async (i) => {
	const phone = phoneOf(i)
	await api('POST', '/sim/accounts', { phone, push_name: 'Bench' })
	const { state, saveCreds } = await useMultiFileAuthState(path.join(tmp, String(i)))
	await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`client ${i} not open in 120 s`)), 120_000)
		const start = () => {
			const sock = makeWASocket({
				auth: state, waWebSocketUrl: wsUrl, logger, browser: Browsers.ubuntu('Chrome'),
				printQRInTerminal: false, markOnlineOnConnect: false, syncFullHistory: false,
				shouldSyncHistoryMessage: () => false
			})
			socks[i] = sock
			sock.ev.on('creds.update', saveCreds)
			sock.ev.on('messages.upsert', ({ messages }) => {
				for (const m of messages) {
					const text = m.message?.conversation
					if (text && !received.has(text)) received.set(text, Date.now())
				}
			})
			sock.ev.on('messages.update', (ups) => {
				for (const u of ups) if ((u.update?.status ?? 0) >= 3 && !delivered.has(u.key.id)) delivered.set(u.key.id, Date.now())
			})
			sock.ev.on('connection.update', async (u) => {
				if (u.qr && !state.creds.me) {
					const r = await api('POST', `/sim/accounts/${phone}/scan`, { qr: u.qr })
					if (r.status !== 200) reject(new Error(`scan ${i}: ${r.status} ${JSON.stringify(r.body)}`))
				}
				if (u.connection === 'open') { clearTimeout(timer); resolve() }
				// After pairing Baileys closes with 515 and must reconnect (as its example does).
				if (u.connection === 'close' && u.lastDisconnect?.error?.output?.statusCode === 515) start()
			})
		}
		start()
	})
	progress('connect', ++opened, K)
})
const connectSecs = (Date.now() - t0) / 1000
await new Promise((r) => setTimeout(r, 5000))
const connected = rssKiB()

async function inbound() {
	const sent = new Map()
	const t = Date.now()
	const errs = await pool(K, MSG_CONCURRENCY, async (i) => {
		const text = `baileys-in-${i}`
		sent.set(text, Date.now())
		const r = await api('POST', `/sim/accounts/${PEER}/messages`, { to: `${phoneOf(i)}@s.whatsapp.net`, text })
		if (r.status !== 200) throw new Error(`send ${r.status}`)
	})
	const deadline = Date.now() + 120_000
	while (Date.now() < deadline && [...sent.keys()].filter((k) => received.has(k)).length + errs.length < K) await new Promise((r) => setTimeout(r, 50))
	const lat = []; let last = t
	for (const [k, at] of sent) { const r = received.get(k); if (r) { lat.push(r - at); last = Math.max(last, r) } }
	return { ...summary(lat), send_errors: errs.length, msgs_per_sec: Math.round(lat.length / Math.max((last - t) / 1000, 1e-9) * 100) / 100 }
}

async function outbound() {
	const sent = new Map()
	const t = Date.now()
	const errs = await pool(K, MSG_CONCURRENCY, async (i) => {
		const at = Date.now()
		const m = await socks[i].sendMessage(`${PEER}@s.whatsapp.net`, { text: `baileys-out-${i}` })
		sent.set(m.key.id, at)
	})
	const deadline = Date.now() + 120_000
	while (Date.now() < deadline && [...sent.keys()].filter((k) => delivered.has(k)).length < sent.size) await new Promise((r) => setTimeout(r, 50))
	const lat = []; let last = t
	for (const [k, at] of sent) { const d = delivered.get(k); if (d) { lat.push(d - at); last = Math.max(last, d) } }
	return { delivery_receipt: summary(lat), send_errors: errs.length, delivered_per_sec: Math.round(lat.length / Math.max((last - t) / 1000, 1e-9) * 100) / 100 }
}

const rounds = []
for (let r = 0; r < 2; r++) rounds.push({ round: r, sim_phone_to_client: await inbound(), client_to_sim_phone: await outbound() })
out(JSON.stringify({
	bench: 'baileys-sessions', baileys: '7.0.0-rc14', node: process.version, k: K,
	connect: { secs: connectSecs, failed: pairErrors.length, first_errors: pairErrors.slice(0, 3) },
	rss_kib: { baseline, connected, per_session: Math.round((connected - baseline) / K * 100) / 100 },
	messages: rounds
}))
for (const s of socks) { try { s?.end(undefined) } catch {} }
fs.rmSync(tmp, { recursive: true, force: true })
process.exit(0)
