"""Checks that the official Python client `zulip`, unmodified, receives
presence events from a running presence server, used the way its
documentation shows: `register` and `get_events`, `deregister`, and
`call_on_each_event`.

Usage: zulip_client_events.py LISTENER_ZULIPRC BOB_ZULIPRC CAROL_ZULIPRC DAVE_ZULIPRC

All four users are in one realm and have never reported presence. The
server should send heartbeats often (about a second), so that waiting
polls come back quickly. Prints one line per check and exits non-zero if
any failed; gives up after a minute whatever happens.
"""

import signal
import sys
import threading
import time

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


def next_presence_event(client, queue_id, last_event_id, limit=20.0):
    """Polls a queue until a presence event comes; returns it (or None)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        r = client.get_events(queue_id=queue_id, last_event_id=last_event_id)
        if r.get("result") != "success":
            print(f"     get_events failed: {r}")
            return None
        for event in r["events"]:
            last_event_id = max(last_event_id, event["id"])
            if event["type"] == "presence":
                return event
    return None


class Received(Exception):
    """Raised from the callback to leave `call_on_each_event`."""

    def __init__(self, event):
        super().__init__("received")
        self.event = event


def main():
    # Whatever goes wrong, do not hang the test run.
    signal.alarm(60)
    listener_rc, bob_rc, carol_rc, dave_rc = sys.argv[1:5]
    alice = zulip.Client(config_file=listener_rc)
    bob = zulip.Client(config_file=bob_rc)
    carol = zulip.Client(config_file=carol_rc)
    dave = zulip.Client(config_file=dave_rc)
    carol_id = carol.get_profile()["user_id"]
    dave_id = dave.get_profile()["user_id"]

    # register and get_events, the legacy event shape.
    r = alice.register(event_types=["presence"])
    check("register succeeds", r.get("result") == "success", r)
    check("register answers a queue id", isinstance(r.get("queue_id"), str), r)
    check("register starts at event -1", r.get("last_event_id") == -1, r)
    check("register fetches everyone's presence", isinstance(r.get("presences"), dict), r)
    check(
        "register tells the ping interval and offline threshold",
        isinstance(r.get("server_presence_ping_interval_seconds"), int)
        and isinstance(r.get("server_presence_offline_threshold_seconds"), int),
        r,
    )
    queue_id = r["queue_id"]
    bob.update_presence({"status": "active"})
    event = next_presence_event(alice, queue_id, r["last_event_id"])
    check("get_events delivers bob coming online", event is not None, event)
    event = event or {}
    check("the event names bob", event.get("email") == bob.email, event)
    check(
        "the event has bob's entry for the official client",
        event.get("presence", {}).get("ZulipPython", {}).get("status") == "active",
        event,
    )

    # The modern shape, with the client capability.
    r = alice.register(
        event_types=["presence"],
        client_capabilities={"simplified_presence_events": True},
    )
    check("register with simplified_presence_events succeeds", r.get("result") == "success", r)
    carol.update_presence({"status": "idle"})
    event = next_presence_event(alice, r["queue_id"], r["last_event_id"]) or {}
    presences = event.get("presences", {})
    check(
        "the modern event has carol's timestamps by user id",
        set(presences.get(str(carol_id), {})) == {"active_timestamp", "idle_timestamp"},
        event,
    )

    # deregister, after which the queue is gone.
    r = alice.deregister(queue_id)
    check("deregister succeeds", r.get("result") == "success", r)
    r = alice.get_events(queue_id=queue_id, last_event_id=-1)
    check(
        "a deleted queue is BAD_EVENT_QUEUE_ID",
        r.get("result") == "error" and r.get("code") == "BAD_EVENT_QUEUE_ID",
        r,
    )

    # call_on_each_event: dave keeps turning his presence off and on (each
    # turn is news) until the callback has seen one of them.
    stop = threading.Event()

    def toggle():
        enabled = False
        while not stop.is_set():
            dave.call_endpoint(
                url="settings", method="PATCH", request={"presence_enabled": enabled}
            )
            enabled = not enabled
            stop.wait(0.3)

    def callback(event):
        raise Received(event)

    toggler = threading.Thread(target=toggle, daemon=True)
    toggler.start()
    event = None
    try:
        alice.call_on_each_event(callback, event_types=["presence"])
    except Received as received:
        event = received.event
    finally:
        stop.set()
        toggler.join(timeout=5)
    check("call_on_each_event delivers a presence event", event is not None, event)
    event = event or {}
    check("the callback's event is dave's", event.get("user_id") == dave_id, event)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
