// Cross-implementation vectors for zapin's binary node codec, produced by the unmodified
// Baileys npm package (encodeBinaryNode / decodeBinaryNode).
//
//   node tests/interop/codec-vectors.mjs      (from the repo root; writes tests/vectors/codec/baileys.json)
//
// Each vector: name, the node as given to Baileys (attrs are [key, value] string pairs in wire
// order; content is null, {"nodes": [...]}, {"bytes": hex} or {"str": s}), and `hex`: Baileys'
// encoding without the leading flags byte. Vectors with a `quirk` are ones where zapin's encoder legitimately
// writes different bytes (wa-protocol.md Appendix B); for those only decoding is compared, and
// `baileys_decoded` records what Baileys itself reads back.
import { writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeBinaryNode, decodeBinaryNode } from 'baileys'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, '..', 'vectors', 'codec', 'baileys.json')

// Deterministic filler bytes (no RNG: the file must be stable across regenerations).
const bytes = (n, seed = 1) => {
	const b = Buffer.alloc(n)
	let x = seed
	for (let i = 0; i < n; i++) {
		x = (x * 1103515245 + 12345) >>> 0
		b[i] = x >>> 24
	}
	return b
}

const n = (tag, attrs = {}, content = undefined) => ({ tag, attrs, content })

const vectors = []
const add = (name, node, quirk) => vectors.push({ name, node, quirk })

// --- §4.7 keepalive and the A.3 success stanza -------------------------------------------------
add('ping iq', n('iq', { id: '1234.5678-1', xmlns: 'w:p', type: 'get', to: '@s.whatsapp.net' }, [n('ping')]))
add(
	'success with AD_JID lid',
	n('success', {
		t: '1752021890',
		props: '27',
		location: 'frc',
		lid: '100000000000001:42@lid',
		abprops: '10',
		creation: '1752020041',
		companion_enc_static: 'd5Yb5WxL+k5UKQHVI6buFRGQEj0GZA5evz8b6V2xkdw='
	})
)

// --- messages ------------------------------------------------------------------------------------
const participants = []
for (let i = 0; i < 6; i++) {
	const jid = i % 2 ? `55119${String(i).padStart(8, '0')}:${i}@s.whatsapp.net` : `1000000000000${i}:${i + 1}@lid`
	participants.push(n('to', { jid }, [n('enc', { v: '2', type: i % 3 ? 'msg' : 'pkmsg' }, bytes(40 + i, i + 7))]))
}
add(
	'group message with participants',
	n('message', { id: '3EB0A1B2C3D4E5F60718', to: '120363025246125888@g.us', type: 'text', phash: '2:5s+YxCff', addressing_mode: 'lid' }, [
		n('participants', {}, participants),
		n('device-identity', {}, bytes(120, 3)),
		n('enc', { v: '2', type: 'skmsg' }, bytes(90, 4))
	])
)
add(
	'direct message to pn',
	n('message', { id: '3EB0C0FFEE', to: '5511999999999@s.whatsapp.net', type: 'text' }, [
		n('enc', { v: '2', type: 'msg' }, bytes(64, 9))
	])
)
add(
	'incoming message with participant lid and notify',
	n('message', {
		from: '120363025246125888@g.us',
		id: 'ABCDEF0123456789',
		t: '1700000000',
		participant: '100000000000009@lid',
		participant_pn: '5511988887777@s.whatsapp.net',
		notify: 'Zé 🚀',
		type: 'media'
	}, [n('enc', { v: '2', type: 'skmsg', mediatype: 'image' }, bytes(200, 5))])
)

// --- iq usync ------------------------------------------------------------------------------------
add(
	'usync device query',
	n('iq', { id: '22222.33333-4', to: '@s.whatsapp.net', type: 'get', xmlns: 'usync' }, [
		n('usync', { sid: '22222.33333-5', mode: 'query', last: 'true', index: '0', context: 'message' }, [
			n('query', {}, [n('devices', { version: '2' }), n('lid')]),
			n('list', {}, [
				n('user', { jid: '5511999999999@s.whatsapp.net' }),
				n('user', { jid: '100000000000001@lid' })
			])
		])
	])
)
add(
	'usync result with device-list',
	n('iq', { from: '@s.whatsapp.net', id: '22222.33333-4', type: 'result' }, [
		n('usync', { sid: '22222.33333-5' }, [
			n('list', {}, [
				n('user', { jid: '5511999999999@s.whatsapp.net' }, [
					n('devices', {}, [
						n('device-list', {}, [n('device', { id: '0' }), n('device', { id: '3', 'key-index': '2' })]),
						n('key-index-list', { ts: '1700000001' }, bytes(30, 11))
					]),
					n('lid', { val: '100000000000001@lid' })
				])
			])
		])
	])
)

// --- receipts, acks, notifications -------------------------------------------------------------
add('read receipt with list', n('receipt', { id: 'AAA111', to: '5511999999999@s.whatsapp.net', type: 'read', t: '1700000002' }, [
	n('list', {}, [n('item', { id: 'AAA112' }), n('item', { id: 'AAA113' })])
]))
add('delivery receipt from lid device', n('receipt', { from: '100000000000001:7@lid', id: 'BBB222', t: '1700000003' }))
add('retry receipt', n('receipt', { id: 'CCC333', to: '5511999999999:2@s.whatsapp.net', type: 'retry' }, [
	n('retry', { count: '1', id: 'CCC333', t: '1700000004', v: '1' }),
	n('registration', {}, Buffer.from([0, 0, 0x30, 0x39]))
]))
add('ack', n('ack', { id: 'DDD444', class: 'receipt', type: 'read', to: '5511999999999@s.whatsapp.net' }))
add('group notification', n('notification', { from: '120363025246125888@g.us', type: 'w:gp2', id: '1234567', t: '1700000005', participant: '100000000000002@lid' }, [
	n('add', {}, [n('participant', { jid: '100000000000003@lid', phone_number: '5511977776666@s.whatsapp.net' })])
]))
add('encrypt count notification', n('notification', { from: '@s.whatsapp.net', type: 'encrypt', id: '7654321', t: '1700000006' }, [n('count', { value: '5' })]))

// --- pairing -------------------------------------------------------------------------------------
add('pair-device with refs', n('iq', { from: '@s.whatsapp.net', type: 'set', id: '100001', xmlns: 'md' }, [
	n('pair-device', {}, [
		n('ref', {}, Buffer.from('2@AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/=abc,def')),
		n('ref', {}, Buffer.from('2@ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210+/=xyz,uvw')),
		n('ref', {}, bytes(0))
	])
]))
add('pair-success', n('iq', { from: '@s.whatsapp.net', type: 'result', id: '100002' }, [
	n('pair-success', {}, [
		n('device-identity', {}, bytes(160, 21)),
		n('platform', { name: 'Chrome' }),
		n('device', { jid: '5511999999999:12@s.whatsapp.net', lid: '100000000000001:12@lid' }),
		n('biz', { name: 'Acme' })
	])
]))

// --- content kinds, lengths, lists ---------------------------------------------------------------
add('bytes content BINARY_8 max', n('media', {}, bytes(255, 31)))
add('bytes content BINARY_20 min', n('media', {}, bytes(256, 32)))
add('bytes content BINARY_20 larger', n('media', {}, bytes(5000, 33)))
add('bytes content empty', n('media', {}, bytes(0)))
add('token string content', n('type', {}, 'text'))
add('double-byte token content and tag', n('pair-device', { type: 'retry' }, 'passive'))
add('raw string content', n('body', {}, 'hello, world'))
const many = []
for (let i = 0; i < 300; i++) many.push(n('item', { id: String(i) }))
add('list of 300 children (LIST_16)', n('list', {}, many))
const exactly255 = []
for (let i = 0; i < 255; i++) exactly255.push(n('item'))
add('list of 255 children (LIST_8 max)', n('list', {}, exactly255))
add('empty child list', n('list', {}, []))
add('empty strings', n('x', { a: '', b: 'non-empty' }, ''))
add('many attributes (LIST_16 header)', n('x', Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`k${i}x`, `v${i}`]))))

// --- packed strings ------------------------------------------------------------------------------
add('nibble strings', n('x', { even: '1234', odd: '1234.5678-1', dots: '-.-.', n127: '9'.repeat(127), n128: '9'.repeat(128) }))
add('hex strings', n('x', { even: 'ABCDEF01', odd: 'ABC', lower: 'abcdef', mixed: 'ABCdef', h127: 'F'.repeat(127), h128: 'F'.repeat(128) }))

// --- JIDs ----------------------------------------------------------------------------------------
add('jid attributes of each server', n('x', {
	pn: '5511999999999@s.whatsapp.net',
	pn_dev: '5511999999999:3@s.whatsapp.net',
	lid: '100000000000001@lid',
	lid_dev: '100000000000001:99@lid',
	group: '120363025246125888@g.us',
	legacy_group: '5511999999999-1600000000@g.us',
	status: 'status@broadcast',
	broadcast: '1600000000@broadcast',
	newsletter: '120363000000000001@newsletter',
	hosted: '5511999999999:1@hosted',
	hosted_lid: '100000000000001:2@hosted.lid',
	bot: '13135550002@bot',
	legacy: '16505361212@c.us',
	server: '@s.whatsapp.net',
	server_gus: '@g.us',
	agent: '5511999999999_5:2@s.whatsapp.net',
	interop_like: 'not a jid'
}))
add('jid content', n('jid', {}, '5511999999999:4@s.whatsapp.net'))
add('jid user that is not nibble', n('x', { jid: 'abc@s.whatsapp.net', lid: 'XYZ:1@lid' }))

// --- Appendix B quirks: bytes legitimately differ ------------------------------------------------
add('device 0 as AD_JID', n('x', { jid: '5511999999999:0@s.whatsapp.net' }),
	'Baileys writes AD_JID for an explicit :0 device (and reads it back without :0); zapin writes device 0 as JID_PAIR')
add('msgr via JID_PAIR', n('x', { jid: '100001@msgr' }),
	'Baileys writes user@msgr as JID_PAIR; zapin writes Messenger JIDs as FB_JID (F6), per WhatsMeow/whatsapp-rust')
add('unknown server', n('x', { jid: 'someone@example.com' }),
	'Baileys JID-encodes any string containing @; zapin only JID-encodes known servers and keeps the rest as raw strings')
add('device on group server', n('x', { jid: '1:2@g.us' }),
	'Baileys writes AD_JID domain 0 (losing g.us: it reads back as 1:2@s.whatsapp.net); zapin rejects a device on g.us and writes raw bytes')
add('double at', n('x', { jid: 'a@b@s.whatsapp.net' }),
	'Baileys splits at the first @ (server "b@s.whatsapp.net"); zapin does not parse this as a JID and writes raw bytes')

// --- encode with Baileys, check Baileys round trip -----------------------------------------------
const describe = (node) => ({
	tag: node.tag,
	attrs: Object.entries(node.attrs || {}),
	content:
		node.content === undefined ? null
			: Array.isArray(node.content) ? { nodes: node.content.map(describe) }
				: Buffer.isBuffer(node.content) ? { bytes: node.content.toString('hex') }
					: { str: node.content }
})

const result = []
for (const v of vectors) {
	const encoded = encodeBinaryNode(v.node)
	if (encoded[0] !== 0) throw new Error(`${v.name}: unexpected flags byte ${encoded[0]}`)
	const entry = { name: v.name, node: describe(v.node), hex: encoded.subarray(1).toString('hex') }
	if (v.quirk) {
		const decoded = await decodeBinaryNode(encoded)
		entry.quirk = v.quirk
		entry.baileys_decoded = describe(decoded)
	}
	result.push(entry)
}

mkdirSync(dirname(out), { recursive: true })
const doc = {
	generator: 'tests/interop/codec-vectors.mjs',
	baileys: '7.0.0-rc14',
	note: 'hex = encodeBinaryNode(node) without the leading 0x00 flags byte. Vectors with "quirk" are decode-only.',
	vectors: result
}
writeFileSync(out, JSON.stringify(doc, null, 1) + '\n')
console.log(`wrote ${result.length} vectors to ${out}`)
