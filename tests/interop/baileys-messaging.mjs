// Messaging scenarios for unmodified Baileys against zapin-sim, run by the scenario runner
// (tests/interop/baileys-sim.mjs, command `scenario`), which provides `ctx`:
//
//   ctx.api.get(path) / ctx.api.post(path, body) / ctx.api.delete(path) -> { status, body }
//   ctx.newAccount(pushName)           -> phone (digits)                 POST /sim/accounts
//   ctx.linkBaileys(phone, pushName)   -> client  paired by QR + logged in, creds.me.name set and
//                                                 `available` presence sent (delivery ticks, §12.3)
//   ctx.reconnect(client, attach?)     -> client  same creds, new socket; `attach(client)` runs
//                                                 before it connects, so listeners see what is
//                                                 delivered right at login
//   ctx.close(client)                  -> void    end the socket for good, keep the creds
//
// A client is not a socket: it reconnects by itself (like an application) after any close but
// 401/403/440 or `ctx.close`, `client.ev` re-emits the current socket's Baileys events
// (messages.upsert, messages.update, groups.upsert, connection.update, …), and
// `client.sendMessage / readMessages / groupCreate / sendPresenceUpdate` go to the current socket.
// `client.waitOpen()` resolves at its next `open`. `client.statuses` (id → highest status) and
// `client.receipts` (id → group receipts) are kept from the start, so receipts that arrive
// before a scenario starts waiting are not lost.
//
// Each scenario is `async (ctx) => void`, uses fresh accounts, and throws on failure. Add one by
// exporting it and listing it in `scenarios`; the Rust test runs every name in that list.

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

/**
 * Resolves once message `id` reached status >= `status` (3 delivered, 4 read) in Baileys'
 * messages.update (or the status of its own messages.upsert, where Baileys' event buffer folds
 * early receipts), including updates that arrived before the call (`client.statuses`).
 */
function statusAtLeast(client, id, status, ms = WAIT_MS) {
	if ((client.statuses.get(id) ?? 0) >= status) return Promise.resolve()
	return nextEvent(client, 'status', () =>
		(client.statuses.get(id) ?? 0) >= status ? true : undefined, ms)
		.catch(() => { throw new Error(`message ${id} never reached status ${status} (has ${client.statuses.get(id)})`) })
}

/**
 * Resolves once `count` group receipts for `id` have `field` set: Baileys' message-receipt.update, or the
 * `userReceipt` of its own upsert (`client.receipts`, event `receipt`).
 */
function groupReceipt(client, id, field = 'receiptTimestamp', count = 1, ms = WAIT_MS) {
	const has = () => (client.receipts.get(id) ?? []).filter((r) => r?.[field]).length >= count ? true : undefined
	if (has()) return Promise.resolve()
	return nextEvent(client, 'receipt', has, ms)
		.catch(() => { throw new Error(`no group receipt with ${field} for ${id}: ${JSON.stringify(client.receipts.get(id))}`) })
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
	assert(msg.pushName === 'Alice', `notify = push name from <presence name>, got ${msg.pushName}`)
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
	assert(msg.key.remoteJid === pn(bob), `chat ${msg.key.remoteJid}`)
	assert(msg.pushName === 'Bob', `notify = the account's push name, got ${msg.pushName}`)

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

/**
 * Groups with sender keys between two Baileys clients and a mock phone (Carol, no companion):
 * one created by Baileys (`groupCreate`), one by the phone (POST /sim/groups); everyone writes.
 */
export async function groupsBothWays(ctx) {
	const alice = await ctx.newAccount('Alice')
	const bob = await ctx.newAccount('Bob')
	const carol = await ctx.newAccount('Carol')
	const a = await ctx.linkBaileys(alice, 'Alice')
	const b = await ctx.linkBaileys(bob, 'Bob')

	const upsert = nextEvent(b, 'groups.upsert', (groups) => groups.find((g) => g.subject === 'From Baileys'))
	const meta = await a.groupCreate('From Baileys', [pn(bob), pn(carol)])
	await upsert

	// Alice → group: SKDM pairwise to every device, one skmsg.
	const gotByB = incomingText(b, 'hello group')
	const first = await a.sendMessage(meta.id, { text: 'hello group' })
	const m = await gotByB
	assert(m.key.remoteJid === meta.id, `group chat, got ${m.key.remoteJid}`)
	assert(m.key.participant?.startsWith(alice), `participant ${m.key.participant}`)
	await until(async () => (await phoneInbox(ctx, carol)).some((x) => x.chat === meta.id && x.text === 'hello group'), 'carol phone got the group message')
	await until(async () => (await phoneInbox(ctx, bob)).some((x) => x.chat === meta.id && x.text === 'hello group'), 'bob phone got the group message')
	await groupReceipt(a, first.key.id)
	// Read receipts in a group: Bob's client, then Carol's phone.
	await b.readMessages([m.key])
	const rd = await ctx.api.post(`/sim/accounts/${carol}/read`, { chat: meta.id, ids: [first.key.id] })
	assert(rd.status === 200, `POST read ${rd.status}`)
	await groupReceipt(a, first.key.id, 'readTimestamp', 2)

	// Bob → group: Alice's client and Carol's phone decrypt it.
	const gotByA = incomingText(a, 'hello back')
	await b.sendMessage(meta.id, { text: 'hello back' })
	await gotByA
	await until(async () => (await phoneInbox(ctx, carol)).some((x) => x.chat === meta.id && x.text === 'hello back'), 'carol phone got the reply')

	// Carol's phone → group: both Baileys clients decrypt its sender key message.
	const phoneToA = incomingText(a, 'carol here')
	const phoneToB = incomingText(b, 'carol here')
	const sent = await ctx.api.post(`/sim/accounts/${carol}/messages`, { to: meta.id, text: 'carol here' })
	assert(sent.status === 200, `POST messages ${sent.status} ${JSON.stringify(sent.body)}`)
	for (const got of [await phoneToA, await phoneToB]) {
		assert(got.key.remoteJid === meta.id, `group chat of the phone message: ${got.key.remoteJid}`)
		assert(got.key.participant?.startsWith(carol), `participant ${got.key.participant}`)
		assert(got.pushName === 'Carol', `notify ${got.pushName}`)
	}
	await until(async () => {
		const r = await ctx.api.get(`/sim/accounts/${carol}/receipts?id=${sent.body.id}`)
		return r.body.some((x) => x.type === 'delivered')
	}, 'delivered receipt for the group message at the phone')

	// A group the phone creates, and messages both ways in it.
	const upsertA = nextEvent(a, 'groups.upsert', (groups) => groups.find((g) => g.subject === 'From the phone'))
	const created = await ctx.api.post('/sim/groups', { creator: carol, subject: 'From the phone', participants: [alice, bob] })
	assert(created.status === 201, `POST groups ${created.status}`)
	const gjid = created.body.jid
	await upsertA
	const fromPhone = incomingText(a, 'phone in group')
	const fromPhoneB = incomingText(b, 'phone in group')
	const s2 = await ctx.api.post(`/sim/accounts/${carol}/messages`, { to: gjid, text: 'phone in group' })
	assert(s2.status === 200, `POST messages ${s2.status}`)
	assert((await fromPhone).key.remoteJid === gjid, 'group chat of the phone message')
	await fromPhoneB
	const answered = incomingText(b, 'answer to the phone')
	await a.sendMessage(gjid, { text: 'answer to the phone' })
	await answered
	await until(async () => (await phoneInbox(ctx, carol)).some((x) => x.chat === gjid && x.text === 'answer to the phone'), 'phone got the group answer')
}

/** Whether the control API shows companion `device` of `phone` online. */
async function online(ctx, phone, device = 1) {
	const { body } = await ctx.api.get(`/sim/accounts/${phone}`)
	return !!body?.devices?.find((d) => d.id === device)?.online
}

function collectTexts(client, seen) {
	client.ev.on('messages.upsert', ({ messages }) => {
		for (const m of messages) if (!m.key.fromMe && textOf(m)) seen.add(textOf(m))
	})
}

/**
 * Messages sent while a device is away arrive after it comes back: once after the application
 * closed its socket, once after `disconnect_all` while the server refuses connections (Baileys'
 * reconnect loop gets in when the faults are cleared).
 */
export async function queuedDeliveryAfterReconnect(ctx) {
	const alice = await ctx.newAccount('Alice')
	const bob = await ctx.newAccount('Bob')
	const a = await ctx.linkBaileys(alice, 'Alice')
	const b = await ctx.linkBaileys(bob, 'Bob')

	// Sessions first, then Bob's application closes its socket.
	const first = incomingText(b, 'warm up')
	await a.sendMessage(pn(bob), { text: 'warm up' })
	await first
	ctx.close(b)
	await until(async () => !(await online(ctx, bob)), 'bob offline after close')

	const closed = await a.sendMessage(pn(bob), { text: 'while closed 1' })
	const r1 = await ctx.api.post(`/sim/accounts/${alice}/messages`, { to: pn(bob), text: 'while closed 2' })
	assert(r1.status === 200, `POST messages ${r1.status}`)

	const seen = new Set()
	await ctx.reconnect(b, (c) => collectTexts(c, seen))
	await until(() => seen.has('while closed 1') && seen.has('while closed 2'), 'queued messages after reconnect')
		.catch((e) => { throw new Error(`${e.message}; got ${[...seen].join(', ')}`) })
	await statusAtLeast(a, closed.key.id, 3)

	// disconnect_all while new connections are refused: both clients stay away until the faults clear.
	let r = await ctx.api.post('/sim/faults', { action: 'refuse', seconds: 60 })
	assert(r.status === 200, `refuse ${r.status}`)
	const opensA = a.opens
	const opensB = b.opens
	r = await ctx.api.post('/sim/faults', { action: 'disconnect_all' })
	assert(r.status === 200, `disconnect_all ${r.status}`)
	await until(async () => !(await online(ctx, bob)) && !(await online(ctx, alice)), 'both offline after disconnect_all')

	seen.clear()
	const r2 = await ctx.api.post(`/sim/accounts/${alice}/messages`, { to: pn(bob), text: 'while refused' })
	assert(r2.status === 200, `POST messages ${r2.status}`)
	r = await ctx.api.delete('/sim/faults')
	assert(r.status === 200, `DELETE faults ${r.status}`)
	await Promise.all([a.waitOpen(opensA), b.waitOpen(opensB)])
	await until(() => seen.has('while refused'), 'queued message after disconnect_all')
		.catch((e) => { throw new Error(`${e.message}; got ${[...seen].join(', ')}`) })

	// And the reconnected clients talk again.
	const again = incomingText(b, 'after the faults')
	await a.sendMessage(pn(bob), { text: 'after the faults' })
	await again
}

/**
 * An account's own devices see each other's sends: the phone's message to Bob shows up on Alice's
 * Baileys as her own (fromMe, in the chat with Bob: `recipient` on the copy), and Alice's Baileys
 * message to Bob reaches her phone as an own copy (deviceSentMessage) in that chat.
 */
export async function ownDeviceCopies(ctx) {
	const alice = await ctx.newAccount('Alice')
	const bob = await ctx.newAccount('Bob')
	const a = await ctx.linkBaileys(alice, 'Alice')
	const b = await ctx.linkBaileys(bob, 'Bob')

	const mine = nextEvent(a, 'messages.upsert', ({ messages }) =>
		messages.find((m) => m.key.fromMe && textOf(m) === 'sent from my phone'))
	const theirs = incomingText(b, 'sent from my phone')
	const r = await ctx.api.post(`/sim/accounts/${alice}/messages`, { to: pn(bob), text: 'sent from my phone' })
	assert(r.status === 200, `POST messages ${r.status}`)
	const copy = await mine
	assert(copy.key.remoteJid === pn(bob), `own copy chat ${copy.key.remoteJid}`)
	assert(copy.key.id === r.body.id, 'own copy id')
	assert((await theirs).key.id === r.body.id, 'same id at bob')

	const sent = await a.sendMessage(pn(bob), { text: 'sent from my laptop' })
	await until(async () => (await phoneInbox(ctx, alice)).some((m) =>
		m.id === sent.key.id && m.chat === pn(bob) && m.text === 'sent from my laptop'), 'own copy at the phone')
}

export const scenarios = {
	dmsBothWaysWithReceipts,
	mockPhoneAndBaileys,
	groupsBothWays,
	queuedDeliveryAfterReconnect,
	ownDeviceCopies,
}
