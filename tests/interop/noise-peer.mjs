// Runs Baileys' own, unmodified Noise handler as the *client* of a Noise responder that speaks
// over this process's stdin/stdout (zapin's Rust ServerHandshake in protocol/tests/).
// The only change to Baileys is at run time: WA_CERT_DETAILS.PUBLIC_KEY is set to the test root
// passed in ZAPIN_TEST_ROOT (hex), since the responder's chain is signed by a test root.
//
// Line protocol (one message per line, hex payloads are frame payloads, no 3-byte framing):
//   node -> rust: "client_static <hex>"    the client's noise static public key
//   node -> rust: "hello <hex>"            HandshakeMessage{clientHello}
//   rust -> node: "<hex>"                  HandshakeMessage{serverHello}
//   node -> rust: "payload <hex>"          the ClientPayload plaintext (registration payload)
//   node -> rust: "finish <hex>"           HandshakeMessage{clientFinish}
//   node -> rust: "frame <plain hex> <ct hex>"   N transport frames, client -> server
//   rust -> node: "<ct hex>" per server frame, then "end"
//   node -> rust: "plain <hex>"            each decrypted server frame, then "done"
// Any failure prints "error <message>" and exits 1.
import readline from 'node:readline'
import {
	makeNoiseHandler,
	proto,
	WA_CERT_DETAILS,
	NOISE_WA_HEADER,
	Curve,
	initAuthCreds,
	generateRegistrationNode,
	DEFAULT_CONNECTION_CONFIG
} from 'baileys'

const root = process.env.ZAPIN_TEST_ROOT
if (!root || root.length !== 64) {
	console.log('error ZAPIN_TEST_ROOT must be a 32-byte hex key')
	process.exit(1)
}
WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(root, 'hex')

const logger = { level: 'info', child() { return this }, trace() {}, debug() {}, info() {}, warn() {}, error() {} }
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const next = async () => {
	const { value, done } = await lines.next()
	if (done) throw new Error('stdin closed')
	return value.trim()
}
const hex = (b) => Buffer.from(b).toString('hex')

try {
	const creds = initAuthCreds()
	const ephemeral = Curve.generateKeyPair()
	const noise = makeNoiseHandler({ keyPair: ephemeral, NOISE_HEADER: NOISE_WA_HEADER, logger })

	console.log(`client_static ${hex(creds.noiseKey.public)}`)
	const hello = proto.HandshakeMessage.encode({ clientHello: { ephemeral: ephemeral.public } }).finish()
	console.log(`hello ${hex(hello)}`)

	const serverHello = proto.HandshakeMessage.decode(Buffer.from(await next(), 'hex'))
	const keyEnc = noise.processHandshake(serverHello, creds.noiseKey)

	const payload = proto.ClientPayload.encode(generateRegistrationNode(creds, DEFAULT_CONNECTION_CONFIG)).finish()
	console.log(`payload ${hex(payload)}`)
	const finish = proto.HandshakeMessage.encode({
		clientFinish: { static: keyEnc, payload: noise.encrypt(payload) }
	}).finish()
	console.log(`finish ${hex(finish)}`)
	await noise.finishInit()

	const sizes = [0, 1, 17, 1500, 4100]
	for (const [i, n] of sizes.entries()) {
		const plain = Buffer.alloc(n, i + 1)
		console.log(`frame ${hex(plain)} ${hex(noise.encrypt(plain))}`)
	}
	for (;;) {
		const line = await next()
		if (line === 'end') break
		console.log(`plain ${hex(noise.decrypt(Buffer.from(line, 'hex')))}`)
	}
	console.log('done')
	process.exit(0)
} catch (e) {
	console.log(`error ${e?.message ?? e}`)
	process.exit(1)
}
