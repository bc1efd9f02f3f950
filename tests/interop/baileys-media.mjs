// Baileys' own media code against the simulator's media endpoints, through an HTTPS front.
//
// Baileys always builds `https://<host>/mms/...` and `https://<host><directPath>`, and the
// simulator serves plain HTTP, so this script starts what a deployment needs: a TLS proxy (a
// throwaway self-signed certificate from the openssl CLI; NODE_TLS_REJECT_UNAUTHORIZED=0 must be
// set by the caller) forwarding to the simulator. Then:
//   1. Baileys encrypts a sample with `encryptedStream` and uploads it with `getWAUploadToServer`
//      (hosts and auth as the simulator's media_conn gave them, host replaced by the front);
//   2. Baileys downloads and decrypts it again with `downloadContentFromMessage`;
//   3. Baileys downloads and decrypts a blob zapin encrypted and uploaded (argv).
// Prints one JSON line: {media_key, plaintext, direct_path, url, baileys_roundtrip, zapin_plaintext}.
//
// Usage: node baileys-media.mjs SIM_ADDR AUTH ZAPIN_MEDIA_KEY_HEX ZAPIN_DIRECT_PATH ZAPIN_TYPE
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encryptedStream, getWAUploadToServer, downloadContentFromMessage } from 'baileys'

const [simAddr, auth, zapinKeyHex, zapinPath, zapinType] = process.argv.slice(2)
const [simHost, simPort] = simAddr.split(':')

const certDir = mkdtempSync(join(tmpdir(), 'zapin-media-tls-'))
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
	'-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' })
const front = https.createServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) },
	(req, res) => {
		const up = http.request({ host: simHost, port: simPort, path: req.url, method: req.method, headers: req.headers },
			(r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res) })
		up.on('error', (e) => { res.writeHead(502); res.end(String(e)) })
		req.pipe(up)
	})
await new Promise((ok) => front.listen(0, '127.0.0.1', ok))
const frontHost = `127.0.0.1:${front.address().port}`

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, child() { return quiet } }
const collect = async (stream) => { const parts = []; for await (const c of stream) parts.push(c); return Buffer.concat(parts) }

const plain = Buffer.from('media sent by unmodified Baileys through the zapin simulator '.repeat(20))
const enc = await encryptedStream(plain, 'image')
const upload = getWAUploadToServer({ customUploadHosts: [], fetchAgent: undefined, logger: quiet, options: {} },
	async () => ({ hosts: [{ hostname: frontHost }], auth, ttl: 300, fetchDate: new Date() }))
const { mediaUrl, directPath } = await upload(enc.encFilePath,
	{ mediaType: 'image', fileEncSha256B64: enc.fileEncSha256.toString('base64'), timeoutMs: 10000 })
unlinkSync(enc.encFilePath)
const again = await collect(await downloadContentFromMessage({ mediaKey: enc.mediaKey, directPath, url: mediaUrl }, 'image', { host: frontHost }))

const zapin = await collect(await downloadContentFromMessage(
	{ mediaKey: Buffer.from(zapinKeyHex, 'hex'), directPath: zapinPath }, zapinType, { host: frontHost }))

front.close()
rmSync(certDir, { recursive: true, force: true })
console.log(JSON.stringify({
	media_key: enc.mediaKey.toString('hex'),
	plaintext: plain.toString('hex'),
	direct_path: directPath,
	url: mediaUrl,
	baileys_roundtrip: again.equals(plain),
	zapin_plaintext: zapin.toString('hex'),
}))
