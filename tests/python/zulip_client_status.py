"""Checks that the official Python client `zulip`, unmodified, sets and
reads a custom status through `call_endpoint` (version 0.9.1 has no
method of its own for them) and receives `user_status` events with
`call_on_each_event`.

Usage: zulip_client_status.py ALICE_ZULIPRC BOB_ZULIPRC

Both users are in one realm. Prints one line per check and exits non-zero
if any failed; gives up after a minute whatever happens.
"""

import signal
import sys
import threading

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


class Received(Exception):
    """Raised from the callback to leave `call_on_each_event`."""

    def __init__(self, event):
        super().__init__("received")
        self.event = event


def get_status(client, user_id):
    return client.call_endpoint(url=f"users/{user_id}/status", method="GET")


def main():
    signal.alarm(60)
    alice = zulip.Client(config_file=sys.argv[1])
    bob = zulip.Client(config_file=sys.argv[2])
    alice_id = alice.get_profile()["user_id"]

    r = alice.call_endpoint(
        url="users/me/status",
        method="POST",
        request={"status_text": "In a meeting", "emoji_name": "calendar"},
    )
    check("POST users/me/status succeeds", r.get("result") == "success", r)
    r = get_status(bob, alice_id)
    check("GET users/{id}/status succeeds", r.get("result") == "success", r)
    check(
        "the status reads back with the emoji's code",
        r.get("status")
        == {
            "status_text": "In a meeting",
            "emoji_name": "calendar",
            "emoji_code": "1f4c5",
            "reaction_type": "unicode_emoji",
        },
        r,
    )

    r = alice.call_endpoint(url="users/me/status", method="POST", request={"away": True})
    check("away is taken as JSON", r.get("result") == "success", r)
    check("away reads back", get_status(bob, alice_id).get("status", {}).get("away") is True)
    r = alice.call_endpoint(url="users/me/status", method="POST", request={})
    check(
        "an empty change is Zulip's error",
        r.get("result") == "error" and r.get("msg") == "Client did not pass any new values.",
        r,
    )

    r = bob.register(event_types=["user_status"])
    check("register fetches user_status", alice_id and str(alice_id) in r.get("user_status", {}), r)

    # call_on_each_event: alice keeps changing her status until bob's
    # callback has seen one of the changes.
    stop = threading.Event()

    def change():
        n = 0
        while not stop.is_set():
            alice.call_endpoint(
                url="users/me/status", method="POST", request={"status_text": f"Busy {n}"}
            )
            n += 1
            stop.wait(0.3)

    def callback(event):
        raise Received(event)

    changer = threading.Thread(target=change, daemon=True)
    changer.start()
    event = None
    try:
        bob.call_on_each_event(callback, event_types=["user_status"])
    except Received as received:
        event = received.event
    finally:
        stop.set()
        changer.join(timeout=5)
    event = event or {}
    check("call_on_each_event delivers a user_status event", event.get("type") == "user_status", event)
    check("the event is alice's", event.get("user_id") == alice_id, event)
    check(
        "the event has her new text",
        str(event.get("status_text", "")).startswith("Busy"),
        event,
    )

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
