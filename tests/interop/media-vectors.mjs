// Encrypts sample files with Baileys' own `encryptedStream` (random mediaKey, per-type HKDF info,
// AES-256-CBC, 10-byte HMAC) and writes each blob with its key and hashes to
// tests/vectors/media/vectors.json. protocol/tests/media_vectors.rs decrypts Baileys' blobs with
// zapin_protocol::media, re-encrypts them and compares byte for byte, and checks the hashes.
// Baileys' `getMediaKeys` output (iv, cipherKey, macKey) is recorded too, to pin the HKDF split.
//
// Run from tests/interop: node media-vectors.mjs
import { mkdirSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs'
import { encryptedStream, getMediaKeys } from 'baileys'

const hex = (b) => Buffer.from(b).toString('hex')
const samples = [
	['image', 'a tiny image body'],
	['video', ''],
	['audio', 'x'.repeat(16)],
	['document', 'document body '.repeat(40)],
	['sticker', 'sticker bytes!'],
	['md-msg-hist', 'history sync blob'],
	['md-app-state', 'app state blob 0123456789'],
	['thumbnail-link', 'link thumbnail'],
]

const vectors = []
for (const [type, text] of samples) {
	const plain = Buffer.from(text, 'utf8')
	const out = await encryptedStream(plain, type)
	const blob = readFileSync(out.encFilePath)
	unlinkSync(out.encFilePath)
	const keys = await getMediaKeys(out.mediaKey, type)
	vectors.push({
		type,
		media_key: hex(out.mediaKey),
		plaintext: hex(plain),
		blob: hex(blob),
		file_sha256: hex(out.fileSha256),
		file_enc_sha256: hex(out.fileEncSha256),
		file_length: out.fileLength,
		mac: hex(out.mac),
		iv: hex(keys.iv),
		cipher_key: hex(keys.cipherKey),
		mac_key: hex(keys.macKey),
	})
}
const dir = new URL('../vectors/media/', import.meta.url)
mkdirSync(dir, { recursive: true })
writeFileSync(new URL('vectors.json', dir), JSON.stringify({ source: 'baileys@7.0.0-rc14 encryptedStream/getMediaKeys', vectors }, null, 1) + '\n')
console.log(`wrote ${vectors.length} media vectors`)
