// A Signal peer backed by the unmodified npm `libsignal` 6.0.0 (pairwise sessions) and Baileys 7's
// group cipher (npm libsignal 6.0.0 exports no sender-key API), driven by zapin's interop tests.
//
// Protocol: one JSON object per line on stdin, one JSON reply per line on stdout, in order.
// Binary values are base64. Every reply is {ok:true, ...} or {ok:false, error:"..."}.
// The peer is one device with an in-memory store; `reset` makes it a freshly installed device
// (new identity, empty store). Commands:
//   reset                                   -> {identityKey, registrationId}
//   bundle {signedPreKeyId, preKeyId|null}  -> {registrationId, identityKey, signedPreKeyId,
//                                               signedPreKey, signature, preKeyId?, preKey?}
//   process_bundle {peer, bundle}           -> {}
//   encrypt {peer, plaintext}               -> {type:"pkmsg"|"msg", body}
//   decrypt {peer, type, body}              -> {plaintext}
//   has_prekey {id}                         -> {present}
//   group_create {group}                    -> {skdm}
//   group_process {group, sender, skdm}     -> {}
//   group_encrypt {group, plaintext}        -> {body}
//   group_decrypt {group, sender, body}     -> {plaintext}
import { createRequire } from 'node:module';
import readline from 'node:readline';

// libsignal logs session events (with key material) via console.*; keep stdout for replies only
// and show the logs on stderr only when PEER_DEBUG is set.
const log = process.env.PEER_DEBUG ? (...args) => console.error(...args) : () => {};
console.log = console.info = console.warn = console.debug = log;

const require = createRequire(import.meta.url);
const libsignal = require('libsignal');
const group = await import('baileys/lib/Signal/Group/index.js');
const { GroupCipher, GroupSessionBuilder, SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord } = group;

const b64 = (b) => Buffer.from(b).toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64');
const SELF = 'js';

let state;
function reset() {
  state = {
    identity: libsignal.keyhelper.generateIdentityKeyPair(),
    registrationId: libsignal.keyhelper.generateRegistrationId(),
    preKeys: new Map(),
    signedPreKeys: new Map(),
    sessions: new Map(),
    senderKeys: new Map(),
  };
}
reset();

const storage = {
  async loadSession(id) {
    const s = state.sessions.get(id);
    return s ? libsignal.SessionRecord.deserialize(s) : undefined;
  },
  async storeSession(id, record) {
    state.sessions.set(id, record.serialize());
  },
  async isTrustedIdentity() {
    return true;
  },
  async loadPreKey(id) {
    const k = state.preKeys.get(Number(id));
    return k ? { privKey: k.privKey, pubKey: k.pubKey } : undefined;
  },
  async removePreKey(id) {
    state.preKeys.delete(Number(id));
  },
  async loadSignedPreKey(id) {
    const k = state.signedPreKeys.get(Number(id));
    return k ? { privKey: k.privKey, pubKey: k.pubKey } : undefined;
  },
  async getOurRegistrationId() {
    return state.registrationId;
  },
  async getOurIdentity() {
    return state.identity;
  },
  async loadSenderKey(name) {
    const r = state.senderKeys.get(name.toString());
    return r ? new SenderKeyRecord(r) : new SenderKeyRecord();
  },
  async storeSenderKey(name, record) {
    state.senderKeys.set(name.toString(), record.serialize());
  },
};

const address = (peer) => new libsignal.ProtocolAddress(peer, 0);
const senderKeyName = (groupId, sender) =>
  new SenderKeyName(groupId, { id: sender, deviceId: 0, toString: () => `${sender}.0` });

const handlers = {
  async reset() {
    reset();
    return { identityKey: b64(state.identity.pubKey), registrationId: state.registrationId };
  },
  async bundle({ signedPreKeyId, preKeyId }) {
    const spk = libsignal.keyhelper.generateSignedPreKey(state.identity, signedPreKeyId);
    state.signedPreKeys.set(signedPreKeyId, spk.keyPair);
    const out = {
      registrationId: state.registrationId,
      identityKey: b64(state.identity.pubKey),
      signedPreKeyId,
      signedPreKey: b64(spk.keyPair.pubKey),
      signature: b64(spk.signature),
    };
    if (preKeyId !== null && preKeyId !== undefined) {
      const pk = libsignal.keyhelper.generatePreKey(preKeyId);
      state.preKeys.set(preKeyId, pk.keyPair);
      out.preKeyId = preKeyId;
      out.preKey = b64(pk.keyPair.pubKey);
    }
    return out;
  },
  async has_prekey({ id }) {
    return { present: state.preKeys.has(id) };
  },
  async process_bundle({ peer, bundle }) {
    const device = {
      registrationId: bundle.registrationId,
      identityKey: unb64(bundle.identityKey),
      signedPreKey: {
        keyId: bundle.signedPreKeyId,
        publicKey: unb64(bundle.signedPreKey),
        signature: unb64(bundle.signature),
      },
    };
    if (bundle.preKey) device.preKey = { keyId: bundle.preKeyId, publicKey: unb64(bundle.preKey) };
    await new libsignal.SessionBuilder(storage, address(peer)).initOutgoing(device);
    return {};
  },
  async encrypt({ peer, plaintext }) {
    const r = await new libsignal.SessionCipher(storage, address(peer)).encrypt(unb64(plaintext));
    return { type: r.type === 3 ? 'pkmsg' : 'msg', body: b64(Buffer.from(r.body, typeof r.body === 'string' ? 'binary' : undefined)) };
  },
  async decrypt({ peer, type, body }) {
    const cipher = new libsignal.SessionCipher(storage, address(peer));
    const pt = type === 'pkmsg'
      ? await cipher.decryptPreKeyWhisperMessage(unb64(body))
      : await cipher.decryptWhisperMessage(unb64(body));
    return { plaintext: b64(pt) };
  },
  async group_create({ group: g }) {
    const skdm = await new GroupSessionBuilder(storage).create(senderKeyName(g, SELF));
    return { skdm: b64(skdm.serialize()) };
  },
  async group_process({ group: g, sender, skdm }) {
    const msg = new SenderKeyDistributionMessage(null, null, null, null, unb64(skdm));
    await new GroupSessionBuilder(storage).process(senderKeyName(g, sender), msg);
    return {};
  },
  async group_encrypt({ group: g, plaintext }) {
    const body = await new GroupCipher(storage, senderKeyName(g, SELF)).encrypt(unb64(plaintext));
    return { body: b64(body) };
  },
  async group_decrypt({ group: g, sender, body }) {
    const pt = await new GroupCipher(storage, senderKeyName(g, sender)).decrypt(unb64(body));
    return { plaintext: b64(pt) };
  },
};

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    const req = JSON.parse(line);
    const h = handlers[req.cmd];
    if (!h) throw new Error(`unknown command ${req.cmd}`);
    reply = { ok: true, ...(await h(req)) };
  } catch (e) {
    reply = { ok: false, error: String(e && (e.name + ': ' + e.message)) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
