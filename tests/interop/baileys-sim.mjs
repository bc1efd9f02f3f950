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
//   message_update {id, remote, status}               messages.update (receipts: 3 delivered, 4 read)
//   sent {req, id} / error {req?, message}
//
// Extend it by adding a case to `commands` and, for new Baileys events, a line in `attach()`.
import readline from 'node:readline'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import baileys, { WA_CERT_DETAILS, useMultiFileAuthState, Browsers, DisconnectReason } from 'baileys'

const makeWASocket = baileys.default ?? baileys.makeWASocket ?? baileys

const root = process.env.ZAPIN_SIM_ROOT
const wsUrl = process.env.ZAPIN_SIM_WS
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
const emit = (obj) => console.log(JSON.stringify(obj))
/** name → { sock, stopped, pairPhone } */
const clients = new Map()

const NO_RECONNECT = new Set([DisconnectReason.loggedOut, DisconnectReason.forbidden, DisconnectReason.connectionReplaced])

async function open(name, opts = {}) {
	const state = clients.get(name) ?? { stopped: false, pairPhone: opts.pairPhone, codeRequested: false, history: !!opts.history }
	clients.set(name, state)
	const { state: auth, saveCreds } = await useMultiFileAuthState(path.join(tmp, name))
	const sock = makeWASocket({
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
		...(state.history ? {} : { shouldSyncHistoryMessage: () => false })
	})
	state.sock = sock
	attach(name, state, sock, saveCreds)
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
		for (const m of messages) {
			const text = m.message?.conversation ?? m.message?.extendedTextMessage?.text
			emit({
				event: 'message',
				client: name,
				id: m.key.id,
				from: m.key.remoteJid,
				participant: m.key.participant ?? undefined,
				fromMe: !!m.key.fromMe,
				text: text ?? undefined,
				type: m.message ? Object.keys(m.message)[0] : (m.messageStubType ?? 'none')
			})
		}
	})
	sock.ev.on('messages.update', (updates) => {
		for (const u of updates) {
			if (u.update?.status !== undefined) {
				emit({ event: 'message_update', client: name, id: u.key.id, remote: u.key.remoteJid, status: u.update.status })
			}
		}
	})
}

function client(name) {
	const c = clients.get(name)
	if (!c?.sock) throw new Error(`no client ${name}`)
	return c
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
