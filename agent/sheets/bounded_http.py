"""An HTTP server for the local page that can never take the agent down with it.

Anything on the PC can connect to 127.0.0.1 (any local user, any web page via the browser). With
one thread and one descriptor per connection and no time-out, 1,014 idle connections exhausted the
agent's descriptors: new measurements could not be opened, and nothing was logged. So this server
holds at most ``max_connections`` at once (beyond that a new connection is closed at once and the
shedding is logged), and every connection gets a socket time-out, so idle and slow clients go away
on their own. Collection needs a few descriptors; the page can now use at most ``max_connections``.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32
#: Seconds a connection may stay silent (between bytes of a request, or before one): a browser
#: sends a request at once; a client that waits longer is idle or deliberately slow.
SOCKET_TIMEOUT = 10.0
SHED_LOG_SECONDS = 30.0
#: Seconds one connection may last in all: a client that trickles a byte every few seconds never
#: trips SOCKET_TIMEOUT, so it is cut here (the page's own requests take milliseconds).
REQUEST_DEADLINE = 60.0


class BoundedThreadingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of browser connections waits in the kernel, not in a retry
    max_connections = MAX_CONNECTIONS
    socket_timeout = SOCKET_TIMEOUT
    request_deadline = REQUEST_DEADLINE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._shed = 0
        self._last_shed_log = 0.0
        self._open: dict[int, tuple[float, socket.socket]] = {}
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def handle_request(self) -> None:
        self._cut_overdue()
        super().handle_request()

    def service_actions(self) -> None:  # serve_forever's hook, for callers that use it
        self._cut_overdue()

    def _cut_overdue(self) -> None:
        now = time.monotonic()
        with self._open_lock:
            overdue = [s for t, s in self._open.values() if now > t]
        for s in overdue:
            try:
                s.shutdown(socket.SHUT_RDWR)  # the handler's read returns; its thread ends, the slot frees
            except OSError:
                pass

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.settimeout(self.socket_timeout)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._shed += 1
            now = time.monotonic()
            if now - self._last_shed_log >= SHED_LOG_SECONDS:
                self._last_shed_log = now
                log.warning("local page: %d connection(s) refused: already %d open (the limit); collection and "
                            "uploads are not affected", self._shed, self.max_connections)
                self._shed = 0
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[id(request)] = (time.monotonic() + self.request_deadline, request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(id(request), None)
            self._slots.release()
