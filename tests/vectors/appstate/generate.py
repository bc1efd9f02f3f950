#!/usr/bin/env python3
"""Known-answer vectors for app-state sync (syncd), computed from the published description of
the scheme (mutation-key expansion, LT-hash, value/index/snapshot/patch MACs, AES-256-CBC
values) with Python's hashlib/hmac and the `cryptography` package: an implementation
independent of zapin's. Run it to regenerate vectors.json:

    python3 tests/vectors/appstate/generate.py > tests/vectors/appstate/vectors.json
"""
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def hkdf(ikm, info, length):
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(tag, wire, payload):
    key = varint((tag << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def lt_op(state, vmac, add):
    item = hkdf(vmac, b"WhatsApp Patch Integrity", 128)
    out = b""
    for i in range(0, 128, 2):
        a = struct.unpack("<H", state[i:i + 2])[0]
        b = struct.unpack("<H", item[i:i + 2])[0]
        out += struct.pack("<H", (a + b if add else a - b) & 0xFFFF)
    return out


key_data = bytes(range(32))
key_id = bytes.fromhex("00000001")
okm = hkdf(key_data, b"WhatsApp Mutation Keys", 160)
keys = {n: okm[i * 32:(i + 1) * 32] for i, n in enumerate(
    ["index", "value_encryption", "value_mac", "snapshot_mac", "patch_mac"])}

name = "critical_unblock_low"
index = json.dumps(["contact", "15550000002@s.whatsapp.net"], separators=(",", ":")).encode()
contact = field(1, 2, b"Ana Lima")
value = field(1, 0, 1700000000) + field(3, 2, contact)
data = field(1, 2, index) + field(2, 2, value) + field(3, 2, b"") + field(4, 0, 2)
iv = bytes(range(0x10, 0x20))
padder = padding.PKCS7(128).padder()
plain = padder.update(data) + padder.finalize()
enc = Cipher(algorithms.AES(keys["value_encryption"]), modes.CBC(iv)).encryptor()
ct = enc.update(plain) + enc.finalize()
op_set = 0
vmac = hmac.new(keys["value_mac"], bytes([op_set + 1]) + key_id + iv + ct
                + struct.pack(">Q", len(key_id) + 1), hashlib.sha512).digest()[:32]
imac = hmac.new(keys["index"], index, hashlib.sha256).digest()

lt = lt_op(b"\0" * 128, vmac, True)
version = 1
smac = hmac.new(keys["snapshot_mac"], lt + struct.pack(">Q", version) + name.encode(),
                hashlib.sha256).digest()
pmac = hmac.new(keys["patch_mac"], smac + vmac + struct.pack(">Q", version) + name.encode(),
                hashlib.sha256).digest()

other = hashlib.sha256(b"another value mac").digest()
lt_two = lt_op(lt, other, True)
lt_back = lt_op(lt_two, vmac, False)

print(json.dumps({
    "source": "tests/vectors/appstate/generate.py (Python hashlib/hmac + cryptography)",
    "key_data": key_data.hex(),
    "key_id": key_id.hex(),
    "keys": {k: v.hex() for k, v in keys.items()},
    "collection": name,
    "index_json": index.decode(),
    "full_name": "Ana Lima",
    "timestamp": 1700000000,
    "action_version": 2,
    "sync_action_data": data.hex(),
    "iv": iv.hex(),
    "value_blob": (iv + ct + vmac).hex(),
    "value_mac": vmac.hex(),
    "index_mac": imac.hex(),
    "lt_hash_after_set": lt.hex(),
    "patch_version": version,
    "snapshot_mac": smac.hex(),
    "patch_mac": pmac.hex(),
    "other_value_mac": other.hex(),
    "lt_hash_after_other": lt_two.hex(),
    "lt_hash_after_removing_first": lt_back.hex(),
}, indent=1))
