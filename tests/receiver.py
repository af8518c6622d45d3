"""A webhook receiver on 127.0.0.1 for the delivery tests: it records every request and answers as told."""

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook as Verifier


class Receiver:
    """`answer(n)` gives (status, seconds to wait first) for the n-th request (from 0); 200 at once by default.
    `received` holds (headers, body bytes) of each request that came, `in_flight` the most requests with one
    webhook-id that were being answered at the same moment."""

    def __init__(self, answer=None):
        self.answer = answer or (lambda n: (200, 0))
        self.received: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()
        self.busy: dict[str, int] = {}
        self.in_flight = 0
        self.stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {key.lower(): value for key, value in self.headers.items()}
                event_id = headers.get("webhook-id", "")
                with receiver.lock:
                    number = len(receiver.received)
                    receiver.received.append((headers, body))
                    receiver.busy[event_id] = receiver.busy.get(event_id, 0) + 1
                    receiver.in_flight = max(receiver.in_flight, receiver.busy[event_id])
                try:
                    status, wait = receiver.answer(number)
                    receiver.stopping.wait(wait)
                    with contextlib.suppress(OSError):
                        self.send_response(status)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                finally:
                    with receiver.lock:
                        receiver.busy[event_id] -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def verified(self, secret: str) -> list[dict]:
        """Every request's event, each checked against its signature (raises on a bad one)."""
        return [Verifier(secret).verify(body, headers) for headers, body in list(self.received)]

    def wait_for(self, count: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)


def delivered_once(events: list[dict]) -> list[dict]:
    """The events in the order they first arrived, each once (a delivery may be repeated)."""
    seen, found = set(), []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            found.append(event)
    return found


def body_of(request: tuple[dict, bytes]) -> dict:
    return json.loads(request[1])


def assert_sent_as_in_the_feed(sent: list[dict], feed: list[dict]) -> None:
    """Every event of the feed arrived, as the feed has it, and each resource's in the feed's order (the
    events of different resources may arrive interleaved otherwise)."""
    once = delivered_once(sent)
    assert sorted(e["id"] for e in once) == sorted(e["id"] for e in feed)
    by_id = {e["id"]: e for e in feed}
    assert all(e == by_id[e["id"]] for e in sent)
    for resource in {e["resource"]["id"] for e in feed}:
        assert [e["id"] for e in once if e["resource"]["id"] == resource] == [
            e["id"] for e in feed if e["resource"]["id"] == resource]
