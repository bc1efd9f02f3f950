"""The official Evolution API Python client (evolutionapi 0.1.2, unmodified) against a live
`zapin serve` wired to the simulator: every call of the client that reaches a route zapin serves,
each checked by its effect (the text decrypted by the simulated phone, the read receipt it got,
the group's state and the account's profile at the simulator, the connection state, the instance
list).

Usage: python drive_zapin.py '<json>' with
  {"api": "http://127.0.0.1:Z", "apikey": "...", "sim": "http://127.0.0.1:S",
   "owner": "<phone>", "friend": "<phone>"}
Exits non-zero with the failed check on stderr; prints one JSON line of what it saw on success.
Driven by gateway/tests/python_client.rs.
"""

import base64
import json
import sys
import time

import requests
from evolutionapi.client import EvolutionClient
from evolutionapi.models.chat import Presence, ReadMessage
from evolutionapi.models.group import (
    CreateGroup,
    GroupDescription,
    GroupInvite,
    GroupPicture,
    GroupSubject,
    ToggleEphemeral,
    UpdateParticipant,
    UpdateSetting,
)
from evolutionapi.models.instance import InstanceConfig
from evolutionapi.models.message import TextMessage
from evolutionapi.models.presence import PresenceStatus
from evolutionapi.models.profile import (
    FetchProfile,
    PrivacySettings,
    ProfileName,
    ProfilePicture,
    ProfileStatus,
)

TIMEOUT = 30.0
# A tiny JPEG: enough for WhatsApp's (and the simulator's) format check.
JPEG = bytes([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]) + b"JFIF\x00" + bytes(32) + bytes([0xFF, 0xD9])
JPEG_B64 = base64.b64encode(JPEG).decode()


def wait_for(what, check):
    """Polls `check` until it returns something truthy (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    cfg = json.loads(sys.argv[1])
    sim = cfg["sim"]
    owner, friend = cfg["owner"], cfg["friend"]
    owner_jid, friend_jid = f"{owner}@s.whatsapp.net", f"{friend}@s.whatsapp.net"
    client = EvolutionClient(cfg["api"], cfg["apikey"])
    seen = {}

    expect(client.instances.fetch_instances() == [], "no instances at first")

    created = client.instances.create_instance(
        InstanceConfig(
            instanceName="py",
            integration="WHATSAPP-BAILEYS",
            token="PY-TOKEN",
            rejectCall=True,
            msgCall="busy",
        )
    )
    expect(created.get("hash") == "PY-TOKEN", f"create: {created}")
    token = created["hash"]
    ops = client.instance_operations

    # Connect: the QR object (polled: the first QR may not exist yet).
    qr = wait_for("a QR code", lambda: ops.connect("py", token).get("code"))
    state = wait_for(
        "connecting",
        lambda: ops.get_connection_state("py", token)["instance"].get("state") == "connecting",
    )
    scan = requests.post(f"{sim}/sim/accounts/{owner}/scan", json={"qr": qr}, timeout=TIMEOUT)
    expect(scan.ok, f"scan: {scan.status_code} {scan.text}")
    wait_for(
        "open",
        lambda: ops.get_connection_state("py", token)["instance"].get("state") == "open",
    )
    listed = client.instances.fetch_instances()
    expect(
        [(i["name"], i["connectionStatus"], i["ownerJid"]) for i in listed]
        == [("py", "open", owner_jid)],
        f"fetchInstances: {listed}",
    )
    seen["setting"] = listed[0]["Setting"]["msgCall"]

    # Send a text: the friend's phone decrypts it.
    record = client.messages.send_text("py", TextMessage(number=friend, text="hello from python"), token)
    expect(record.get("key", {}).get("fromMe") is True, f"sendText: {record}")
    sent_id = record["key"]["id"]
    wait_for(
        "the friend's phone to decrypt the text",
        lambda: any(
            m["id"] == sent_id and m.get("text") == "hello from python"
            for m in requests.get(f"{sim}/sim/accounts/{friend}/messages", timeout=TIMEOUT).json()
        ),
    )

    # Typing in the friend's chat, then a global presence.
    typed = client.chat.send_presence("py", Presence(number=friend_jid, delay=100, presence="composing"), token)
    expect(typed == {"presence": "composing"}, f"sendPresence: {typed}")
    presence = ops.set_presence("py", PresenceStatus.AVAILABLE, token)
    expect(presence == {"presence": "available"}, f"setPresence: {presence}")

    # The friend writes; the client finds the message and marks it read; the phone sees it.
    reply = requests.post(
        f"{sim}/sim/accounts/{friend}/messages",
        json={"to": owner_jid, "text": "hello from the phone"},
        timeout=TIMEOUT,
    ).json()
    received_id = reply["id"]

    def received():
        page = client.chat.get_messages("py", friend_jid, token, from_me=False)
        records = page["messages"]["records"]
        return [r for r in records if r["key"]["id"] == received_id] and records

    records = wait_for("the reply in findMessages", received)
    # `from_me=False` filters nothing in Evolution (it applies fromMe only when true): both show.
    expect({r["key"]["id"] for r in records} >= {sent_id, received_id}, f"findMessages: {records}")
    read = client.chat.mark_message_as_read("py", [ReadMessage(friend_jid, False, received_id)], token)
    expect(read == {"message": "Read messages", "read": "success"}, f"markMessageAsRead: {read}")
    wait_for(
        "the read receipt at the phone",
        lambda: any(
            r["type"] == "read"
            for r in requests.get(
                f"{sim}/sim/accounts/{friend}/receipts", params={"id": received_id}, timeout=TIMEOUT
            ).json()
        ),
    )

    # Groups: every group call of the client, each seen in the simulator's group state.
    def sim_group(jid):
        return requests.get(f"{sim}/sim/groups/{jid}", timeout=TIMEOUT).json()

    def members(jid):
        return {p["jid"]: p["admin"] for p in sim_group(jid)["participants"]}

    groups = client.group
    group = groups.create_group(
        "py", CreateGroup(subject="py group", participants=[friend], description="from python"), token
    )
    gjid = group.get("id") or ""
    expect(gjid.endswith("@g.us"), f"create_group: {group}")
    view = sim_group(gjid)
    expect((view["subject"], view["description"]) == ("py group", "from python"), f"group: {view}")
    expect(members(gjid) == {owner_jid: "superadmin", friend_jid: None}, f"members: {view}")
    done = groups.update_group_subject("py", gjid, GroupSubject(subject="py renamed"), token)
    expect(done == {"update": "success"}, f"update_group_subject: {done}")
    expect(sim_group(gjid)["subject"] == "py renamed", "subject at the server")
    done = groups.update_group_description("py", gjid, GroupDescription(description="py rules"), token)
    expect(done == {"update": "success"}, f"update_group_description: {done}")
    expect(sim_group(gjid)["description"] == "py rules", "description at the server")
    done = groups.update_group_picture("py", gjid, GroupPicture(image=JPEG_B64), token)
    expect(done == {"update": "success"}, f"update_group_picture: {done}")
    expect(sim_group(gjid)["picture_bytes"] == len(JPEG), "picture at the server")
    code = groups.get_invite_code("py", gjid, token).get("inviteCode")
    expect(code and sim_group(gjid)["invite_code"] == code, f"get_invite_code: {code}")
    revoked = groups.revoke_invite_code("py", gjid, token)
    fresh = revoked.get("inviteCode")
    expect(fresh and fresh != code and sim_group(gjid)["invite_code"] == fresh, f"revoke: {revoked}")
    invite = groups.send_invite("py", GroupInvite(groupJid=gjid, description="join", numbers=[friend]), token)
    expect(invite.get("send") is True, f"send_invite: {invite}")
    link = f"join\n\nhttps://chat.whatsapp.com/{fresh}"
    wait_for(
        "the invite text at the friend's phone",
        lambda: any(
            m.get("text") == link
            for m in requests.get(f"{sim}/sim/accounts/{friend}/messages", timeout=TIMEOUT).json()
        ),
    )
    info = groups.get_invite_info("py", fresh, token)
    expect(info.get("id") == gjid, f"get_invite_info: {info}")
    info = groups.get_group_info("py", gjid, token)
    expect(info.get("subject") == "py renamed", f"get_group_info: {info}")
    every = groups.fetch_all_groups("py", token, get_participants=True)
    expect([g["id"] for g in every] == [gjid] and len(every[0]["participants"]) == 2, f"fetch_all_groups: {every}")
    listed = groups.get_participants("py", gjid, token)
    expect(len(listed.get("participants", [])) == 2, f"get_participants: {listed}")
    done = groups.update_participant("py", gjid, UpdateParticipant(action="promote", participants=[friend]), token)
    expect(done.get("updateParticipants", [{}])[0].get("status") == "200", f"update_participant: {done}")
    expect(members(gjid)[friend_jid] == "admin", "promoted at the server")
    done = groups.update_setting("py", gjid, UpdateSetting(action="locked"), token)
    expect(sim_group(gjid)["locked"] is True, f"update_setting: {done}")
    done = groups.toggle_ephemeral("py", gjid, ToggleEphemeral(expiration=86400), token)
    expect(done == {"success": True}, f"toggle_ephemeral: {done}")
    expect(sim_group(gjid)["ephemeral"] == 86400, "ephemeral at the server")
    left = groups.leave_group("py", gjid, token)
    expect(left == {"groupJid": gjid, "leave": True}, f"leave_group: {left}")
    expect(owner_jid not in members(gjid), "left at the server")

    # Profile: about text, picture (set, then removed), privacy; each at the simulated account.
    def sim_profile():
        return requests.get(f"{sim}/sim/accounts/{owner}/profile", timeout=TIMEOUT).json()

    profile = client.profile
    done = profile.update_profile_status("py", ProfileStatus(status="from python"), token)
    expect(sim_profile()["status"] == "from python", f"update_profile_status: {done}")
    done = profile.update_profile_picture("py", ProfilePicture(picture=JPEG_B64), token)
    expect(sim_profile()["picture_bytes"] == len(JPEG), f"update_profile_picture: {done}")
    done = profile.remove_profile_picture("py", token)
    expect(sim_profile()["picture_bytes"] == 0, f"remove_profile_picture: {done}")
    privacy = profile.fetch_privacy_settings("py", token)
    expect(privacy.get("readreceipts") == "all", f"fetch_privacy_settings: {privacy}")
    done = profile.update_privacy_settings(
        "py",
        PrivacySettings(
            readreceipts="none", profile="contacts", status="contacts",
            online="all", last="none", groupadd="contacts",
        ),
        token,
    )
    expect(done.get("update") == "success", f"update_privacy_settings: {done}")
    expect(sim_profile()["privacy"]["readreceipts"] == "none", "privacy at the server")
    # Another account's profile, and our own name (the push name at the server).
    theirs = profile.fetch_profile("py", FetchProfile(number=friend), token)
    expect(theirs.get("wuid") == friend_jid and theirs.get("numberExists") is True, f"fetch_profile: {theirs}")
    business = profile.fetch_business_profile("py", FetchProfile(number=friend), token)
    expect(isinstance(business, dict), f"fetch_business_profile: {business}")
    done = profile.update_profile_name("py", ProfileName(name="Python Owner"), token)
    expect(done == {"update": "success"}, f"update_profile_name: {done}")
    wait_for(
        "the push name at the server",
        lambda: requests.get(f"{sim}/sim/accounts/{owner}", timeout=TIMEOUT).json().get("push_name")
        == "Python Owner",
    )

    # Restart (a POST without a body, JSON Content-Type), then back to open.
    restarted = ops.restart("py", token)
    expect(isinstance(restarted, dict) and restarted.get("error") is not True, f"restart: {restarted}")
    wait_for(
        "open after restart",
        lambda: ops.get_connection_state("py", token)["instance"].get("state") == "open",
    )

    # Logout, then delete (DELETEs with a JSON Content-Type and no body).
    out = ops.logout("py", token)
    expect(out == {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}}, f"logout: {out}")
    wait_for(
        "close after logout",
        lambda: ops.get_connection_state("py", token)["instance"].get("state") == "close",
    )
    closed = client.instances.fetch_instances()[0]
    expect(closed["disconnectionReasonCode"] == 401, f"after logout: {closed}")
    gone = ops.delete("py", token)
    expect(gone == {"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}}, f"delete: {gone}")
    expect(client.instances.fetch_instances() == [], "deleted")

    seen.update(sent=sent_id, received=received_id, state=state)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
