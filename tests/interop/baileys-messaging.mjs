// Messaging scenarios for unmodified Baileys against zapin-sim, to be loaded by the scenario
// runner (tests/interop/baileys-sim.mjs, which owns starting the simulator and linking Baileys).
// Each scenario is `async (ctx) => void` and throws on failure. The runner provides `ctx`:
//
//   ctx.api.get(path) / ctx.api.post(path, body) -> { status, body }    control API (JSON)
//   ctx.newAccount(pushName)           -> phone (digits)                 POST /sim/accounts
//   ctx.linkBaileys(phone, pushName)   -> sock   paired + logged in, creds.me.name set and
//                                                 `available` presence sent (delivery ticks, §12.3)
//   ctx.reconnect(sock, attach?)       -> sock   same creds, new socket; old one closed; `attach(newSock)`
//                                                 runs synchronously right after makeWASocket, so
//                                                 listeners see stanzas delivered right at login
//   ctx.close(sock)                    -> void   end the socket, keep the creds
//
// Only the helpers above are assumed; everything else is plain Baileys and the control API.

const WAIT_MS = 20_000

const pn = (phone) => `${phone}@s.whatsapp.net`

function textOf(msg) {
	const m = msg.message || {}
	return m.conversation || m.extendedTextMessage?.text || undefined
}

/** Resolves with the first `ev` payload item that `pick` maps to a value (not undefined). */
function nextEvent(sock, ev, pick, ms = WAIT_MS) {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			sock.ev.off(ev, on)
			reject(new Error(`timed out waiting for ${ev}`))
		}, ms)
		const on = (payload) => {
			const value = pick(payload)
			if (value !== undefined) {
				clearTimeout(timer)
				sock.ev.off(ev, on)
				resolve(value)
			}
		}
		sock.ev.on(ev, on)
	})
}

/** The next incoming (not fromMe) message whose text is `text`. */
function incomingText(sock, text) {
	return nextEvent(sock, 'messages.upsert', ({ messages }) =>
		messages.find((m) => !m.key.fromMe && textOf(m) === text))
}

/** The next status update >= `status` (3 delivered, 4 read) for message `id`. */
function statusAtLeast(sock, id, status) {
	return nextEvent(sock, 'messages.update', (updates) =>
		updates.find((u) => u.key.id === id && (u.update?.status ?? 0) >= status))
}

async function until(check, what, ms = WAIT_MS) {
	const end = Date.now() + ms
	for (;;) {
		const got = await check()
		if (got) return got
		if (Date.now() > end) throw new Error(`timed out: ${what}`)
		await new Promise((r) => setTimeout(r, 50))
	}
}

async function phoneInbox(ctx, phone) {
	const { status, body } = await ctx.api.get(`/sim/accounts/${phone}/messages`)
	if (status !== 200) throw new Error(`GET messages: ${status}`)
	return body
}

function assert(cond, msg) {
	if (!cond) throw new Error(`assertion failed: ${msg}`)
}

/** Two Baileys users exchange DMs both ways; delivery and read ticks arrive. */
export async function dmsBothWaysWithReceipts(ctx) {
	const alice = await ctx.newAccount('Alice')
	const bob = await ctx.newAccount('Bob')
	const a = await ctx.linkBaileys(alice, 'Alice')
	const b = await ctx.linkBaileys(bob, 'Bob')

	const gotByB = incomingText(b, 'hello bob')
	const sent = await a.sendMessage(pn(bob), { text: 'hello bob' })
	const delivered = statusAtLeast(a, sent.key.id, 3)
	const msg = await gotByB
	await delivered
	const read = statusAtLeast(a, sent.key.id, 4)
	await b.readMessages([msg.key])
	await read

	const gotByA = incomingText(a, 'hi alice')
	const reply = await b.sendMessage(pn(alice), { text: 'hi alice' })
	await gotByA
	await statusAtLeast(b, reply.key.id, 3)

	// The phones saw both too: Bob's phone the first message, Alice's phone the reply.
	await until(async () => (await phoneInbox(ctx, bob)).some((m) => m.text === 'hello bob'), 'bob phone inbox')
	await until(async () => (await phoneInbox(ctx, alice)).some((m) => m.text === 'hi alice'), 'alice phone inbox')
}

/** The mock phone and a Baileys companion of another account talk both ways. */
export async function mockPhoneAndBaileys(ctx) {
	const alice = await ctx.newAccount('Alice')
	const bob = await ctx.newAccount('Bob')
	const a = await ctx.linkBaileys(alice, 'Alice')

	const got = incomingText(a, 'from the phone')
	const { status, body } = await ctx.api.post(`/sim/accounts/${bob}/messages`, { to: pn(alice), text: 'from the phone' })
	assert(status === 200, `POST messages ${status}`)
	const msg = await got
	assert(msg.key.id === body.id, 'same id')

	// Alice's delivery receipt reaches Bob's phone; a read receipt too.
	await until(async () => {
		const r = await ctx.api.get(`/sim/accounts/${bob}/receipts?id=${body.id}`)
		return r.body.some((x) => x.type === 'delivered')
	}, 'delivered receipt at the phone')
	await a.readMessages([msg.key])
	await until(async () => {
		const r = await ctx.api.get(`/sim/accounts/${bob}/receipts?id=${body.id}`)
		return r.body.some((x) => x.type === 'read')
	}, 'read receipt at the phone')

	// Baileys → the phone: decrypted by the phone; its delivery and read receipts give ticks.
	const sent = await a.sendMessage(pn(bob), { text: 'to the phone' })
	await statusAtLeast(a, sent.key.id, 3)
	await until(async () => (await phoneInbox(ctx, bob)).some((m) => m.id === sent.key.id && m.text === 'to the phone'), 'phone decrypted')
	const r = await ctx.api.post(`/sim/accounts/${bob}/read`, { chat: pn(alice), ids: [sent.key.id] })
	assert(r.status === 200, `POST read ${r.status}`)
	await statusAtLeast(a, sent.key.id, 4)
}

/** A group created by Baileys, then by the control API; messages both ways. */
export async function groupsBothWays(ctx) {
	const alice = await ctx.newAccount('Alice')
	const bob = await ctx.newAccount('Bob')
	const a = await ctx.linkBaileys(alice, 'Alice')
	const b = await ctx.linkBaileys(bob, 'Bob')

	const upsert = nextEvent(b, 'groups.upsert', (groups) => groups.find((g) => g.subject === 'From Baileys'))
	const meta = await a.groupCreate('From Baileys', [pn(bob)])
	await upsert

	const gotByB = incomingText(b, 'hello group')
	await a.sendMessage(meta.id, { text: 'hello group' })
	const m = await gotByB
	assert(m.key.remoteJid === meta.id, 'group chat')
	const gotByA = incomingText(a, 'hello back')
	await b.sendMessage(meta.id, { text: 'hello back' })
	await gotByA
	await until(async () => (await phoneInbox(ctx, bob)).some((x) => x.chat === meta.id && x.text === 'hello group'), 'bob phone got the group message')

	// A group the phone creates, and the phone writing to it.
	const created = await ctx.api.post('/sim/groups', { creator: bob, subject: 'From the phone', participants: [alice] })
	assert(created.status === 201, `POST groups ${created.status}`)
	const gotFromPhone = incomingText(a, 'phone in group')
	const sent = await ctx.api.post(`/sim/accounts/${bob}/messages`, { to: created.body.jid, text: 'phone in group' })
	assert(sent.status === 200, `POST messages ${sent.status}`)
	const pm = await gotFromPhone
	assert(pm.key.remoteJid === created.body.jid, 'group chat of the phone message')
	await a.sendMessage(created.body.jid, { text: 'answer to the phone' })
	await until(async () => (await phoneInbox(ctx, bob)).some((x) => x.text === 'answer to the phone'), 'phone got the group answer')
}

/** Messages sent while a device is offline arrive after it reconnects. */
export async function queuedDeliveryAfterReconnect(ctx) {
	const alice = await ctx.newAccount('Alice')
	const bob = await ctx.newAccount('Bob')
	const a = await ctx.linkBaileys(alice, 'Alice')
	let b = await ctx.linkBaileys(bob, 'Bob')

	// Establish sessions first, then take Bob offline.
	const first = incomingText(b, 'warm up')
	await a.sendMessage(pn(bob), { text: 'warm up' })
	await first
	await ctx.close(b)

	await a.sendMessage(pn(bob), { text: 'while offline 1' })
	await ctx.api.post(`/sim/accounts/${alice}/messages`, { to: pn(bob), text: 'while offline 2' })

	const seen = new Set()
	b = await ctx.reconnect(b, (sock) => {
		sock.ev.on('messages.upsert', ({ messages }) => {
			for (const m of messages) if (textOf(m)) seen.add(textOf(m))
		})
	})
	await until(() => seen.has('while offline 1') && seen.has('while offline 2'), 'queued messages after reconnect')
		.catch((e) => {
			throw new Error(`${e.message}; got ${[...seen].join(', ')}`)
		})
}

export const scenarios = {
	dmsBothWaysWithReceipts,
	mockPhoneAndBaileys,
	groupsBothWays,
	queuedDeliveryAfterReconnect,
}
