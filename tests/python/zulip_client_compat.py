"""Checks that the official Python client `zulip` works, unmodified, against
a running presence server, used the way its documentation shows.

Usage: zulip_client_compat.py ALICE_ZULIPRC BOB_ZULIPRC BOT_EMAIL

Both zuliprc files are written as the official client expects them
(`[api]` with `email`, `key`, `site`). Exits non-zero on the first failed
check and prints one line per check.
"""

import sys

import zulip

passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def main():
    alice_rc, bob_rc, bot_email = sys.argv[1:4]

    # The constructor fetches /server_settings and needs zulip_version.
    alice = zulip.Client(config_file=alice_rc)
    bob = zulip.Client(config_file=bob_rc)
    alice_email = alice.email
    bob_email = bob.email

    r = alice.update_presence({"status": "active", "new_user_input": True})
    check("update_presence succeeds", r.get("result") == "success", r)
    check(
        "update_presence answers everyone's legacy presence by email",
        alice_email in r.get("presences", {}),
        r,
    )
    check("server_timestamp is a number", isinstance(r.get("server_timestamp"), float), r)

    r = bob.update_presence({"status": "idle", "ping_only": True})
    check("ping_only answers the bare envelope", r == {"result": "success", "msg": ""}, r)

    r = bob.get_user_presence(alice_email)
    check("get_user_presence succeeds", r.get("result") == "success", r)
    presence = r.get("presence", {})
    check(
        "the client name comes from the official client's User-Agent",
        "ZulipPython" in presence,
        presence,
    )
    check(
        "aggregated shows alice active",
        presence.get("aggregated", {}).get("status") == "active",
        presence,
    )
    entry = presence.get("ZulipPython", {})
    check(
        "the per-client entry has client, status, timestamp, pushable",
        set(entry) == {"client", "status", "timestamp", "pushable"},
        entry,
    )
    # What current Zulip clients read (Zulip 12.0, feature level 497).
    check(
        "the modern timestamps stand beside the entries",
        isinstance(presence.get("active_timestamp"), int)
        and presence.get("active_timestamp") == entry.get("timestamp")
        and isinstance(presence.get("idle_timestamp"), int),
        presence,
    )
    check(
        "the single-user answer carries server_timestamp",
        isinstance(r.get("server_timestamp"), float),
        r,
    )

    r = alice.get_realm_presence()
    check("get_realm_presence succeeds", r.get("result") == "success", r)
    presences = r.get("presences", {})
    check(
        "get_realm_presence lists both users",
        alice_email in presences and bob_email in presences,
        presences,
    )
    check(
        "bob shows idle in the realm view",
        presences.get(bob_email, {}).get("aggregated", {}).get("status") == "idle",
        presences,
    )

    r = alice.update_presence({"status": "active", "last_update_id": -1})
    check(
        "last_update_id answers the modern format by user id",
        r.get("result") == "success"
        and all(key.isdigit() for key in r.get("presences", {}))
        and isinstance(r.get("presence_last_update_id"), int),
        r,
    )

    r = alice.get_user_presence("nobody@nowhere.test")
    check(
        "an unknown user is a Zulip error",
        r.get("result") == "error" and r.get("msg") == "No such user" and r.get("code") == "BAD_REQUEST",
        r,
    )

    r = alice.get_user_presence(bot_email)
    check(
        "a bot is no target",
        r.get("msg") == "Presence is not supported for bot users.",
        r,
    )

    r = alice.call_endpoint(url="users/me", method="GET")
    check("users/me names alice", r.get("email") == alice_email, r)

    r = alice.get_members()
    check(
        "get_members lists the realm",
        r.get("result") == "success" and {m["email"] for m in r.get("members", [])} >= {alice_email, bob_email},
        r,
    )

    r = alice.call_endpoint(url="settings", method="PATCH", request={"presence_enabled": False})
    check("PATCH settings succeeds", r.get("result") == "success", r)
    r = bob.get_user_presence(alice_email)
    check(
        "presence_enabled off makes alice offline at once",
        r.get("presence", {}).get("aggregated", {}).get("status") == "offline",
        r,
    )
    r = alice.call_endpoint(url="settings", method="PATCH", request={"presence_enabled": True})
    r = bob.get_user_presence(alice_email)
    check(
        "presence_enabled on makes alice active again",
        r.get("presence", {}).get("aggregated", {}).get("status") == "active",
        r,
    )

    wrong = zulip.Client(email=alice_email, api_key="A" * 32, site=alice.base_url[: -len("/api/")])
    r = wrong.get_realm_presence()
    check(
        "a wrong key is refused with Zulip's message",
        r.get("result") == "error" and r.get("msg") == "Invalid API key",
        r,
    )

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
