"""A real HTTP receiver on 127.0.0.1, in a thread of the test: it records every request
and answers as the test told it to, one planned answer per request, then 200."""

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_SECONDS = 60


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self):
        self.requests: list[Received] = []
        self._answers = deque()
        self._lock = threading.Lock()
        self.released = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.receiver = self
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, *answers) -> None:
        """The next requests' answers: a status code, or "redirect", "hang" (until
        released), "drip" (a body a byte at a time), "endless" (a body without end)."""
        with self._lock:
            self._answers.extend(answers)

    def record(self, received: Received):
        with self._lock:
            self.requests.append(received)
            return self._answers.popleft() if self._answers else 200

    def webhook_ids(self) -> list[str]:
        with self._lock:
            return [request.headers["webhook-id"] for request in self.requests]

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.receiver.record(Received(self.path, headers, body))
        # The sender hangs up on a hanging or endless answer, as it should.
        with contextlib.suppress(OSError):
            getattr(self, f"_answer_{answer}", self._answer_status)(answer)

    def _answer_status(self, status):
        text = f"answered {status}".encode()
        self.send_response(status)
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def _answer_redirect(self, _answer):
        self.send_response(302)
        self.send_header("location", "/elsewhere")
        self.send_header("content-length", "0")
        self.end_headers()

    def _answer_hang(self, _answer):
        self.server.receiver.released.wait(HANG_SECONDS)
        self._answer_status(200)

    def _answer_drip(self, _answer):
        self.send_response(200)
        self.send_header("content-length", "1000000")
        self.end_headers()
        while not self.server.receiver.released.is_set():
            self.wfile.write(b".")
            self.wfile.flush()
            time.sleep(0.05)

    def _answer_endless(self, _answer):
        self.send_response(200)
        self.send_header("content-length", str(10**12))
        self.end_headers()
        chunk = b"x" * 60_000
        while not self.server.receiver.released.is_set():
            self.wfile.write(chunk)

    def log_message(self, *args):
        pass
