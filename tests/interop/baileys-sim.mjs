// A small scenario runner that drives unmodified Baileys clients against zapin's simulator.
//
// The only change to Baileys is at run time: WA_CERT_DETAILS.PUBLIC_KEY is set to the
// simulator's root key (ZAPIN_SIM_ROOT, hex, from `GET /sim/root-key`), and every socket is
// pointed at ZAPIN_SIM_WS (the simulator's ws://…/ws/chat) through Baileys' own `waWebSocketUrl`.
// Auth state lives in a fresh temp dir per run (Baileys' useMultiFileAuthState), deleted on exit.
//
// Protocol: JSON lines. Commands on stdin, events on stdout (one object per line, always with
// `event`; per-client events also carry `client`). Diagnostics go to stderr only.
//
// Commands ({"cmd": …}):
//   {"cmd":"start","client":"alice"}                  open a socket; QR codes arrive as `qr` events
//                                                     (start and pair_code take "history": true to
//                                                     keep Baileys' 20 s wait for a history sync)
//   {"cmd":"pair_code","client":"bob","phone":"155…"} open a socket and request a phone-number
//                                                     pairing code (`pairing_code` event)
//   {"cmd":"send_text","client":"alice","to":"<jid>","text":"…","req":"r1"}
//                                                     sendMessage; answers `sent` {req,id} or `error`
//   {"cmd":"presence","client":"alice","type":"available"}
//   {"cmd":"stop","client":"alice"}                   end the socket, no reconnect (`stopped`)
//   {"cmd":"scenarios"}                               the scenario names (`scenarios` {names}),
//                                                     all or those in ZAPIN_SCENARIOS (a,b,…)
//   {"cmd":"scenario","name":"dmsBothWays","req":"s1"} run one scenario of baileys-messaging.mjs
//                                                     with its own clients (needs ZAPIN_SIM_HTTP);
//                                                     answers `scenario` {name, req, ok, ms} or
//                                                     `error` {req, message}
//   {"cmd":"link","client":"bob","phone":"155…","name":"Bob","req":"l1"}
//                                                     a client paired to account `phone` as the
//                                                     scenarios pair them (QR scanned through the
//                                                     control API, push name, `available`);
//                                                     answers `linked` {req, jid}; then `message`
//                                                     and `message_update` events as for `start`,
//                                                     and `send_text` works with its name
//   {"cmd":"exit"}                                    stop everything and exit 0
// Events:
//   ready                                             the runner reads commands
//   qr {qr}                                           a QR string to scan (POST /sim/accounts/…/scan)
//   pairing_code {code}
//   connection {state: "connecting"|"open"|"close", status?, me?}
//                                                     Baileys' connection.update; `status` is
//                                                     lastDisconnect's statusCode (515, 401, 440, …)
//   creds {registered, me}                            after a creds.update that changed `me`
//   reconnecting {after}                              the runner reconnects (as Baileys' example
//                                                     does) after any close except 401/403/440
//   message {id, from, participant?, fromMe, text?, type}   messages.upsert entries
//   groups.upsert / groups.update / group-participants.update {client, data}
//                                                     Baileys' group events, `data` as emitted
//   message_update {id, remote, status}               messages.update (receipts: 3 delivered, 4 read)
//   sent {req, id} / error {req?, message}
//
// Extend it by adding a case to `commands` and, for new Baileys events, a line in `attach()`.
import readline from 'node:readline'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { EventEmitter } from 'node:events'
import baileys, { WA_CERT_DETAILS, useMultiFileAuthState, Browsers, DisconnectReason } from 'baileys'
import { scenarios } from './baileys-messaging.mjs'

const makeWASocket = baileys.default ?? baileys.makeWASocket ?? baileys

const root = process.env.ZAPIN_SIM_ROOT
const wsUrl = process.env.ZAPIN_SIM_WS
// The control API (http://…), needed by the `scenario` command only.
const httpUrl = process.env.ZAPIN_SIM_HTTP
if (!root || root.length !== 64 || !wsUrl) {
	console.log(JSON.stringify({ event: 'error', message: 'set ZAPIN_SIM_ROOT (64 hex) and ZAPIN_SIM_WS' }))
	process.exit(1)
}
WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(root, 'hex')

const debug = !!process.env.ZAPIN_BAILEYS_DEBUG
const noop = () => {}
const logger = {
	level: debug ? 'debug' : 'silent',
	child() { return this },
	trace: noop,
	debug: debug ? (...a) => console.error('[debug]', ...a.map(x => typeof x === 'object' ? JSON.stringify(x) : x)) : noop,
	info: debug ? (...a) => console.error('[info]', ...a.map(x => typeof x === 'object' ? JSON.stringify(x) : x)) : noop,
	warn: (...a) => console.error('[warn]', ...a.map(x => typeof x === 'object' ? JSON.stringify(x) : x)),
	error: (...a) => console.error('[error]', ...a.map(x => typeof x === 'object' ? JSON.stringify(x) : x)),
	fatal: (...a) => console.error('[fatal]', ...a.map(x => typeof x === 'object' ? JSON.stringify(x) : x))
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zapin-baileys-'))
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
// stdout is the event channel: libsignal (inside Baileys) logs with console.log/info.
console.log = console.error
console.info = console.error
/** name → { sock, stopped, pairPhone } */
const clients = new Map()

const NO_RECONNECT = new Set([DisconnectReason.loggedOut, DisconnectReason.forbidden, DisconnectReason.connectionReplaced])

async function open(name, opts = {}) {
	const state = clients.get(name) ?? { stopped: false, pairPhone: opts.pairPhone, codeRequested: false, history: !!opts.history }
	clients.set(name, state)
	const { state: auth, saveCreds } = await useMultiFileAuthState(path.join(tmp, name))
	const sock = makeWASocket(socketOptions(auth, state.history))
	state.sock = sock
	attach(name, state, sock, saveCreds)
}

function socketOptions(auth, history) {
	return {
		auth,
		waWebSocketUrl: wsUrl,
		logger,
		browser: Browsers.ubuntu('Chrome'),
		printQRInTerminal: false,
		markOnlineOnConnect: false,
		syncFullHistory: false,
		fireInitQueries: true,
		generateHighQualityLinkPreview: false,
		// The mock phones send no history sync; with Baileys' default it buffers every event for
		// 20 s after the first login waiting for one (and the warning Baileys prints about LID
		// mappings is moot: they come from usync here). `"history": true` restores the default.
		...(history ? {} : { shouldSyncHistoryMessage: () => false })
	}
}

function attach(name, state, sock, saveCreds) {
	let lastMe = JSON.stringify(sock.authState.creds.me ?? null)
	sock.ev.on('creds.update', async () => {
		await saveCreds()
		const me = JSON.stringify(sock.authState.creds.me ?? null)
		if (me !== lastMe) {
			lastMe = me
			emit({ event: 'creds', client: name, registered: !!sock.authState.creds.registered, me: sock.authState.creds.me ?? null })
		}
	})
	sock.ev.on('connection.update', async (u) => {
		if (u.qr) {
			emit({ event: 'qr', client: name, qr: u.qr })
			if (state.pairPhone && !state.codeRequested && !sock.authState.creds.registered) {
				state.codeRequested = true
				try {
					const code = await sock.requestPairingCode(state.pairPhone)
					emit({ event: 'pairing_code', client: name, code })
				} catch (e) {
					emit({ event: 'error', client: name, message: `requestPairingCode: ${e?.message ?? e}` })
				}
			}
		}
		if (u.connection) {
			const status = u.lastDisconnect?.error?.output?.statusCode
			const ev = { event: 'connection', client: name, state: u.connection }
			if (status !== undefined) ev.status = status
			if (u.connection === 'open') ev.me = sock.authState.creds.me ?? null
			emit(ev)
			if (u.connection === 'close') {
				if (state.stopped) {
					emit({ event: 'stopped', client: name })
				} else if (!NO_RECONNECT.has(status)) {
					emit({ event: 'reconnecting', client: name, after: status ?? null })
					open(name).catch((e) => emit({ event: 'error', client: name, message: `reconnect: ${e?.message ?? e}` }))
				}
			}
		}
	})
	sock.ev.on('messages.upsert', ({ messages }) => {
		for (const m of messages) emit(messageEvent(name, m))
	})
	sock.ev.on('messages.update', (updates) => {
		for (const u of updates) {
			if (u.update?.status !== undefined) {
				emit({ event: 'message_update', client: name, id: u.key.id, remote: u.key.remoteJid, status: u.update.status })
			}
		}
	})
	// Group events exactly as Baileys emits them (what Evolution forwards as webhooks).
	for (const kind of ['groups.upsert', 'groups.update', 'group-participants.update']) {
		sock.ev.on(kind, (data) => emit({ event: kind, client: name, data }))
	}
}

/** The `message` event of one messages.upsert entry. */
function messageEvent(name, m) {
	const text = m.message?.conversation ?? m.message?.extendedTextMessage?.text
	return {
		event: 'message',
		client: name,
		id: m.key.id,
		from: m.key.remoteJid,
		participant: m.key.participant ?? undefined,
		fromMe: !!m.key.fromMe,
		text: text ?? undefined,
		type: m.message ? Object.keys(m.message)[0] : (m.messageStubType ?? 'none')
	}
}

function client(name) {
	const c = clients.get(name)
	if (!c?.sock) throw new Error(`no client ${name}`)
	return c
}


// ---- Scenario context (the `scenario` command; scenarios live in baileys-messaging.mjs) ----

const api = {
	async request(method, p, body) {
		if (!httpUrl) throw new Error('set ZAPIN_SIM_HTTP to run scenarios')
		const r = await fetch(httpUrl + p, {
			method,
			headers: body === undefined ? {} : { 'content-type': 'application/json' },
			body: body === undefined ? undefined : JSON.stringify(body)
		})
		const text = await r.text()
		let parsed = null
		try { parsed = text ? JSON.parse(text) : null } catch { parsed = text }
		return { status: r.status, body: parsed }
	},
	get(p) { return this.request('GET', p) },
	post(p, body) { return this.request('POST', p, body ?? {}) },
	delete(p) { return this.request('DELETE', p) }
}

/** Baileys events a scenario can listen to on `Linked.ev`, whichever socket is current. */
const FORWARDED = ['messages.upsert', 'messages.update', 'message-receipt.update', 'groups.upsert', 'groups.update', 'group-participants.update', 'connection.update']

/**
 * One linked Baileys client of a scenario. It outlives its sockets: like an application, it opens
 * a new socket with the same creds after every close except 401/403/440 (515 at once, otherwise
 * after 250 ms so a refusing server is not hammered), and `ev` re-emits the current socket's events.
 */
class Linked {
	constructor(phone, pushName) {
		this.phone = phone
		this.pushName = pushName
		this.dir = path.join(tmp, `scenario-${phone}`)
		this.ev = new EventEmitter()
		this.ev.setMaxListeners(0)
		this.stopped = false
		this.scanned = false
		this.sock = null
		/** bumped by every connect; stale sockets and reconnect timers check it */
		this.generation = 0
		this.opens = 0
		/** message id → highest status seen (3 delivered, 4 read); each rise emits `status` {id, status} */
		this.statuses = new Map()
		/** message id → group receipts seen (message-receipt.update); each emits `receipt` {id, receipt} */
		this.receipts = new Map()
		const seen = (id, st) => {
			if (typeof st === 'number' && st > (this.statuses.get(id) ?? 0)) {
				this.statuses.set(id, st)
				this.ev.emit('status', { id, status: st })
			}
		}
		this.ev.on('messages.update', (updates) => {
			if (debug) console.error(`[scenario] ${phone} messages.update`, JSON.stringify(updates))
			for (const u of updates) seen(u.key.id, u.update?.status)
		})
		const receipt = (id, r) => {
			const list = this.receipts.get(id) ?? []
			list.push(r)
			this.receipts.set(id, list)
			this.ev.emit('receipt', { id, receipt: r })
		}
		this.ev.on('message-receipt.update', (updates) => {
			for (const u of updates) receipt(u.key.id, u.receipt)
		})
		// Baileys' event buffer folds a receipt that arrives while our own sent message is still
		// buffered into that message's upsert (`status`, `userReceipt`) instead of an update event.
		this.ev.on('messages.upsert', ({ messages }) => {
			for (const m of messages) {
				if (!m.key.fromMe) continue
				seen(m.key.id, m.status)
				for (const r of m.userReceipt ?? []) receipt(m.key.id, r)
			}
		})
	}

	async connect() {
		if (this.stopped) return
		const generation = ++this.generation
		const { state: auth, saveCreds } = await useMultiFileAuthState(this.dir)
		if (this.stopped || generation !== this.generation) return
		const sock = makeWASocket(socketOptions(auth, false))
		this.sock = sock
		sock.ev.on('creds.update', saveCreds)
		for (const name of FORWARDED) {
			sock.ev.on(name, (payload) => { if (this.sock === sock) this.ev.emit(name, payload) })
		}
		sock.ev.on('connection.update', (u) => {
			if (this.sock !== sock) return
			if (u.qr && !this.scanned && !sock.authState.creds.registered) {
				this.scanned = true
				api.post(`/sim/accounts/${this.phone}/scan`, { qr: u.qr }).then((r) => {
					if (r.status !== 200) this.ev.emit('failure', new Error(`scan ${r.status}: ${JSON.stringify(r.body)}`))
				}, (e) => this.ev.emit('failure', e))
			}
			if (u.connection === 'open') this.opens++
			if (u.connection === 'close') {
				const status = u.lastDisconnect?.error?.output?.statusCode
				if (this.stopped || NO_RECONNECT.has(status)) return
				const generation = this.generation
				setTimeout(() => {
					// Not if the client was closed or reconnected meanwhile.
					if (generation === this.generation) this.connect().catch((e) => this.ev.emit('failure', e))
				}, status === DisconnectReason.restartRequired ? 0 : 250)
			}
		})
	}

	/** Resolves at the next `open` (counting from `after` opens), rejects on failure or timeout. */
	waitOpen(after = this.opens, ms = 30_000) {
		return new Promise((resolve, reject) => {
			if (this.opens > after) return resolve(this)
			const timer = setTimeout(() => { cleanup(); reject(new Error(`${this.phone}: not open after ${ms} ms`)) }, ms)
			const onUpdate = (u) => { if (u.connection === 'open') { cleanup(); resolve(this) } }
			const onFail = (e) => { cleanup(); reject(e) }
			const cleanup = () => { clearTimeout(timer); this.ev.off('connection.update', onUpdate); this.ev.off('failure', onFail) }
			this.ev.on('connection.update', onUpdate)
			this.ev.on('failure', onFail)
		})
	}

	sendMessage(...a) { return this.sock.sendMessage(...a) }
	readMessages(...a) { return this.sock.readMessages(...a) }
	groupCreate(...a) { return this.sock.groupCreate(...a) }
	sendPresenceUpdate(...a) { return this.sock.sendPresenceUpdate(...a) }
	get user() { return this.sock.user }

	/** Ends the socket for good (creds kept; `reconnect` opens a new one). */
	close() {
		this.stopped = true
		this.generation++
		const sock = this.sock
		// Detached first: its close event must not look like the current socket's.
		this.sock = null
		sock?.end(undefined)
	}
}

/** Every client opened by scenarios, closed after each scenario. */
const linked = new Set()

const ctx = {
	api,
	async newAccount(pushName) {
		const r = await api.post('/sim/accounts', { push_name: pushName })
		if (r.status !== 201) throw new Error(`POST /sim/accounts: ${r.status} ${JSON.stringify(r.body)}`)
		return r.body.phone
	},
	/**
	 * Pairs a new Baileys client to `phone` by QR (its phone scans through the control API), waits
	 * for the login after the 515, then gives it its push name: `creds.me.name` (Baileys announces
	 * it with `<presence name>`) and `available` presence, without which Baileys sends only
	 * `inactive` delivery receipts (wa-protocol.md §12.3 point 13).
	 */
	async linkBaileys(phone, pushName) {
		const c = new Linked(phone, pushName)
		linked.add(c)
		const opened = c.waitOpen(0)
		await c.connect()
		await opened
		const me = c.sock.authState.creds.me
		c.sock.ev.emit('creds.update', { me: { ...me, name: pushName } })
		await c.sock.sendPresenceUpdate('available')
		return c
	},
	/** A new socket with the same creds; `attach(client)` runs before it connects. */
	async reconnect(c, attach) {
		c.close()
		c.stopped = false
		attach?.(c)
		const opened = c.waitOpen()
		await c.connect()
		await opened
		await c.sock.sendPresenceUpdate('available')
		return c
	},
	close(c) {
		c.close()
	}
}

/** Scenario names to run from ZAPIN_SCENARIOS (comma-separated), or all. */
function scenarioNames() {
	const only = process.env.ZAPIN_SCENARIOS?.split(',').map((x) => x.trim()).filter(Boolean)
	return only?.length ? Object.keys(scenarios).filter((n) => only.includes(n)) : Object.keys(scenarios)
}

async function runScenario(name) {
	const f = scenarios[name]
	if (!f) throw new Error(`unknown scenario ${name}`)
	try {
		await f(ctx)
	} finally {
		for (const c of linked) c.close()
		linked.clear()
	}
}

const commands = {
	async start({ client: name, history }) {
		await open(name, { history })
	},
	async pair_code({ client: name, phone, history }) {
		await open(name, { pairPhone: phone, history })
	},
	async send_text({ client: name, to, text, req }) {
		const sent = await client(name).sock.sendMessage(to, { text })
		emit({ event: 'sent', client: name, req, id: sent?.key?.id })
	},
	async presence({ client: name, type }) {
		await client(name).sock.sendPresenceUpdate(type ?? 'available')
	},
	async link({ client: name, phone, name: pushName, req }) {
		if (clients.has(name)) throw new Error(`client ${name} exists`)
		const c = await ctx.linkBaileys(phone, pushName ?? name)
		// Not a scenario client: it lives until `exit`.
		linked.delete(c)
		clients.set(name, c)
		c.ev.on('messages.upsert', ({ messages }) => {
			for (const m of messages) emit(messageEvent(name, m))
		})
		c.ev.on('status', ({ id, status }) => {
			emit({ event: 'message_update', client: name, id, status })
		})
		// Group events exactly as Baileys emits them (what Evolution forwards as webhooks).
		for (const kind of ['groups.upsert', 'groups.update', 'group-participants.update']) {
			c.ev.on(kind, (data) => emit({ event: kind, client: name, data }))
		}
		emit({ event: 'linked', client: name, req, jid: c.user?.id })
	},
	async scenarios() {
		emit({ event: 'scenarios', names: scenarioNames() })
	},
	async scenario({ name, req }) {
		const started = Date.now()
		await runScenario(name)
		emit({ event: 'scenario', name, req, ok: true, ms: Date.now() - started })
	},
	async stop({ client: name }) {
		const c = client(name)
		c.stopped = true
		c.sock.end(undefined)
	},
	async exit() {
		for (const c of clients.values()) {
			c.stopped = true
			try { c.sock?.end(undefined) } catch {}
		}
		fs.rmSync(tmp, { recursive: true, force: true })
		process.exit(0)
	}
}

process.on('unhandledRejection', (e) => emit({ event: 'error', message: `unhandled: ${e?.stack ?? e}` }))
process.on('exit', () => { try { fs.rmSync(tmp, { recursive: true, force: true }) } catch {} })

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', async (line) => {
	if (!line.trim()) return
	let cmd
	try {
		cmd = JSON.parse(line)
		const f = commands[cmd.cmd]
		if (!f) throw new Error(`unknown command ${cmd.cmd}`)
		await f(cmd)
	} catch (e) {
		emit({ event: 'error', client: cmd?.client, req: cmd?.req, message: e?.message ?? String(e) })
	}
})
lines.on('close', () => commands.exit())
emit({ event: 'ready' })
