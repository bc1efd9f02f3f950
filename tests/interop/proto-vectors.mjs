// Encodes sample messages with Baileys' own protobufjs types (WAProto) and writes them, with the
// sample values, to tests/vectors/proto/*.json. protocol/tests/proto_vectors.rs decodes each with
// zapin's prost types and checks every value, which cross-checks wa.proto's field numbers and
// types against Baileys. Every value is distinct so that two swapped fields cannot both pass.
//
// Run from tests/interop: node proto-vectors.mjs
import { mkdirSync, writeFileSync } from 'node:fs'
import { proto, generateLoginNode, DEFAULT_CONNECTION_CONFIG } from 'baileys'

const b = (s) => Buffer.from(s, 'utf8')
const media = (p) => ({
	url: `https://mmg.example/${p}`,
	mimetype: `${p}/x-test`,
	fileSha256: b(`${p}-sha256-plaintext-32-bytes!!!!`),
	fileEncSha256: b(`${p}-sha256-encrypted-32-bytes!!!`),
	mediaKey: b(`${p}-media-key-32-bytes-long!!!!!!`),
	directPath: `/v/t62/${p}?ccb=11`,
	fileLength: 123456 + p.length,
	mediaKeyTimestamp: 1700000000 + p.length
})
const ctx = {
	stanzaId: '3EB0QUOTED',
	participant: '5511999990001@s.whatsapp.net',
	quotedMessage: { conversation: 'the quoted text' },
	remoteJid: '120363000000000001@g.us',
	mentionedJid: ['5511999990002@s.whatsapp.net', '5511999990003@s.whatsapp.net'],
	forwardingScore: 3,
	isForwarded: true,
	expiration: 604800
}
const key = { remoteJid: '5511999990004@s.whatsapp.net', fromMe: true, id: '3EB0KEYID', participant: '5511999990005@s.whatsapp.net' }

const vectors = {
	message: [
		['Message', 'conversation', { conversation: 'hello from baileys' }],
		['Message', 'extended_text', {
			extendedTextMessage: { text: 'reply text', matchedText: 'https://x.test', description: 'desc', title: 'title', jpegThumbnail: b('thumb'), contextInfo: ctx }
		}],
		['Message', 'image', { imageMessage: { ...media('image'), caption: 'image caption', height: 480, width: 640, jpegThumbnail: b('jpeg'), viewOnce: true, contextInfo: ctx } }],
		['Message', 'video', { videoMessage: { ...media('video'), caption: 'video caption', seconds: 31, gifPlayback: true, height: 720, width: 1280, jpegThumbnail: b('vjpeg'), viewOnce: false } }],
		['Message', 'audio', { audioMessage: { ...media('audio'), seconds: 12, ptt: true, waveform: b('wave') } }],
		['Message', 'document', { documentMessage: { ...media('document'), title: 'doc title', pageCount: 9, fileName: 'report.pdf', caption: 'doc caption', jpegThumbnail: b('djpeg') } }],
		['Message', 'sticker', { stickerMessage: { ...media('sticker'), height: 512, width: 511, isAnimated: true, pngThumbnail: b('png') } }],
		['Message', 'location_contact', {
			locationMessage: { degreesLatitude: -23.5505, degreesLongitude: -46.6333, name: 'Sao Paulo', address: 'Praca da Se', url: 'https://maps.test', isLive: false, accuracyInMeters: 17, comment: 'here', jpegThumbnail: b('ljpeg') },
			contactMessage: { displayName: 'Alice', vcard: 'BEGIN:VCARD\nEND:VCARD' }
		}],
		['Message', 'reaction', { reactionMessage: { key, text: '👍', groupingKey: 'group', senderTimestampMs: 1700000000123 } }],
		['Message', 'poll', {
			pollCreationMessage: { encKey: b('poll-enc-key'), name: 'Lunch?', options: [{ optionName: 'Pizza' }, { optionName: 'Sushi' }], selectableOptionsCount: 1 },
			messageContextInfo: {
				messageSecret: b('message-secret-32-bytes-long!!!!'),
				deviceListMetadataVersion: 2,
				deviceListMetadata: { senderKeyHash: b('skh'), senderTimestamp: 1700000001, recipientKeyHash: b('rkh'), recipientTimestamp: 1700000002 }
			}
		}],
		['Message', 'skdm_dsm', {
			senderKeyDistributionMessage: { groupId: '120363000000000001@g.us', axolotlSenderKeyDistributionMessage: b('skdm-bytes') },
			deviceSentMessage: { destinationJid: '5511999990006@s.whatsapp.net', message: { conversation: 'sent from my phone' }, phash: '2:abcdEFGH' }
		}],
		['Message', 'revoke', { protocolMessage: { key, type: 0 } }],
		['Message', 'history_sync_notification', {
			protocolMessage: {
				type: 5,
				historySyncNotification: {
					...{ fileSha256: b('hs-sha'), fileLength: 99999, mediaKey: b('hs-key'), fileEncSha256: b('hs-enc-sha'), directPath: '/v/hist' },
					syncType: 3, chunkOrder: 4, originalMessageId: 'ORIGID', progress: 55, oldestMsgInChunkTimestampSec: 1690000000,
					initialHistBootstrapInlinePayload: b('inline-zlib'), peerDataRequestSessionId: 'PDR'
				}
			}
		}],
		['Message', 'app_state_sync_key_share', {
			protocolMessage: {
				type: 6,
				appStateSyncKeyShare: {
					keys: [{ keyId: { keyId: b('key-id-1') }, keyData: { keyData: b('key-data-32-bytes-long!!!!!!!!!!'), fingerprint: { rawId: 77, currentIndex: 5, deviceIndexes: [0, 3, 5] }, timestamp: 1700000003 } }]
				}
			}
		}],
		['Message', 'app_state_sync_key_request', { protocolMessage: { type: 7, appStateSyncKeyRequest: { keyIds: [{ keyId: b('want-1') }, { keyId: b('want-2') }] } } }],
		['Message', 'ephemeral_edit', {
			ephemeralMessage: { message: { extendedTextMessage: { text: 'disappearing' } } },
			protocolMessage: { type: 14, key, editedMessage: { conversation: 'edited' }, timestampMs: 1700000004000 }
		}]
	],
	history_sync: [
		['HistorySync', 'history_sync', {
			syncType: 2,
			chunkOrder: 1,
			progress: 100,
			conversations: [{
				id: '5511999990007@s.whatsapp.net',
				messages: [{
					message: { key, message: { conversation: 'old message' }, messageTimestamp: 1690000001, status: 4, participant: '5511999990008@s.whatsapp.net', pushName: 'Bob', starred: true },
					msgOrderId: 42
				}],
				name: 'Chat name', unreadCount: 3, conversationTimestamp: 1690000002, archived: true, pinned: 1690000003, muteEndTime: 1690000004,
				pnJid: '5511999990007@s.whatsapp.net', lidJid: '100000000000007@lid', displayName: 'Display', readOnly: true, ephemeralExpiration: 86400,
				participant: [{ userJid: '5511999990009@s.whatsapp.net', rank: 2 }]
			}],
			pushnames: [{ id: '5511999990010@s.whatsapp.net', pushname: 'Carol' }],
			phoneNumberToLidMappings: [{ pnJid: '5511999990011@s.whatsapp.net', lidJid: '100000000000011@lid' }]
		}]
	],
	adv: [
		['ADVSignedDeviceIdentityHMAC', 'adv_hmac', { details: b('signed-identity'), hmac: b('hmac-32-bytes-long-xxxxxxxxxxxxx'), accountType: 1 }],
		['ADVSignedDeviceIdentity', 'adv_signed_identity', { details: b('identity'), accountSignatureKey: b('account-key'), accountSignature: b('account-sig'), deviceSignature: b('device-sig') }],
		['ADVDeviceIdentity', 'adv_identity', { rawId: 123456, timestamp: 1700000005, keyIndex: 7, accountType: 1, deviceType: 1 }],
		['ADVKeyIndexList', 'adv_key_index_list', { rawId: 654321, timestamp: 1700000006, currentIndex: 9, validIndexes: [0, 4, 9], accountType: 1 }],
		['ADVSignedKeyIndexList', 'adv_signed_key_index_list', { details: b('key-index-list'), accountSignature: b('kil-sig'), accountSignatureKey: b('kil-key') }]
	],
	client_payload: [
		['ClientPayload', 'login_payload', generateLoginNode('5511999990012:3@s.whatsapp.net', DEFAULT_CONNECTION_CONFIG)],
		['ClientPayload', 'full_payload', {
			username: 5511999990013, passive: true, pushName: 'Dave', sessionId: -5, shortConnect: true, connectType: 111, connectReason: 3,
			shards: [1, 2], dnsSource: { dnsMethod: 3, appCached: true }, connectAttemptCount: 4, device: 5, product: 4, oc: true, lc: 6,
			pull: true, paddingBytes: b('pad'), lidDbMigrated: true, accountType: 1, connectionSequenceInfo: 7,
			userAgent: {
				platform: 24, appVersion: { primary: 2, secondary: 3000, tertiary: 1023, quaternary: 4, quinary: 5 }, mcc: '724', mnc: '05',
				osVersion: '14.1', manufacturer: 'Apple', device: 'Mac', osBuildNumber: '23B', phoneId: 'PHONE', releaseChannel: 1,
				localeLanguageIso6391: 'pt', localeCountryIso31661Alpha2: 'BR', deviceBoard: 'board', deviceExpId: 'exp', deviceType: 2, deviceModelType: 'model'
			},
			webInfo: { refToken: 'ref', version: '2.3000', webSubPlatform: 3 },
			devicePairingData: {
				eRegid: b('rgid'), eKeytype: Buffer.from([5]), eIdent: b('ident'), eSkeyId: b('sid'), eSkeyVal: b('sval'), eSkeySig: b('ssig'), buildHash: b('build-hash'),
				deviceProps: b('props')
			}
		}],
		['DeviceProps', 'device_props', {
			os: 'Mac OS', version: { primary: 10, secondary: 15, tertiary: 7, quaternary: 1, quinary: 2 }, platformType: 16, requireFullSync: true,
			historySyncConfig: {
				fullSyncDaysLimit: 1, fullSyncSizeMbLimit: 2, storageQuotaMb: 10240, inlineInitialPayloadInE2EeMsg: true, recentSyncDaysLimit: 5,
				supportCallLogHistory: true, supportGroupHistory: true, onDemandReady: true, thumbnailSyncDaysLimit: 19
			}
		}]
	],
	app_state: [
		['SyncdPatch', 'syncd_patch', {
			version: { version: 17 },
			mutations: [{ operation: 1, record: { index: { blob: b('index-blob') }, value: { blob: b('value-blob') }, keyId: { id: b('rec-key') } } }],
			externalMutations: { mediaKey: b('ext-key'), directPath: '/ext', handle: 'h', fileSizeBytes: 321, fileSha256: b('ext-sha'), fileEncSha256: b('ext-enc') },
			snapshotMac: b('snap-mac'), patchMac: b('patch-mac'), keyId: { id: b('patch-key') }, deviceIndex: 2
		}],
		['SyncdSnapshot', 'syncd_snapshot', {
			version: { version: 18 }, records: [{ index: { blob: b('i1') }, value: { blob: b('v1') }, keyId: { id: b('k1') } }], mac: b('mac'), keyId: { id: b('snap-key') }
		}],
		['SyncActionData', 'sync_action_data', {
			index: b('["contact","5511999990014@s.whatsapp.net"]'), padding: b('pad'), version: 2,
			value: {
				timestamp: 1700000007,
				contactAction: { fullName: 'Eve Full', firstName: 'Eve', lidJid: '100000000000014@lid', saveOnPrimaryAddressbook: true, pnJid: '5511999990014@s.whatsapp.net', username: 'eve' },
				pushNameSetting: { name: 'My Name' }
			}
		}]
	],
	noise: [
		['HandshakeMessage', 'handshake_message', {
			clientHello: { ephemeral: b('c-eph'), static: b('c-static'), payload: b('c-payload') },
			serverHello: { ephemeral: b('s-eph'), static: b('s-static'), payload: b('s-payload') },
			clientFinish: { static: b('f-static'), payload: b('f-payload') }
		}],
		['CertChain', 'cert_chain', { leaf: { details: b('leaf-details'), signature: b('leaf-sig') }, intermediate: { details: b('int-details'), signature: b('int-sig') } }],
		['CertChain.NoiseCertificate.Details', 'cert_details', { serial: 329, issuerSerial: 3, key: b('leaf-key'), notBefore: 1742850000, notAfter: 1753736400 }]
	]
}

const typeOf = (path) => path.split('.').reduce((t, k) => t[k], proto)

// Buffer.prototype.toJSON runs before a replacer sees the value, so convert bytes first.
const hexBytes = (v) => {
	if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
	if (Array.isArray(v)) return v.map(hexBytes)
	if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hexBytes(x)]))
	return v
}

const dir = new URL('../vectors/proto/', import.meta.url)
mkdirSync(dir, { recursive: true })
for (const [file, list] of Object.entries(vectors)) {
	const out = list.map(([type, name, object]) => {
		const T = typeOf(type)
		const msg = T.fromObject(object)
		const plain = T.toObject(msg, { longs: Number, enums: String, defaults: false })
		return { type, name, object: JSON.parse(JSON.stringify(hexBytes(plain))), hex: Buffer.from(T.encode(msg).finish()).toString('hex') }
	})
	// Bytes in `object` are hex strings, enums are value names; `hex` is the whole encoding.
	writeFileSync(new URL(`${file}.json`, dir), JSON.stringify(out, null, 1) + '\n')
	console.log(`wrote tests/vectors/proto/${file}.json (${out.length} vectors)`)
}
