"""A tiny TCP proxy on 127.0.0.1 that a test can cut (drop every connection, refuse new ones) and restore.

It forwards bytes only (TLS passes through untouched), so the client still verifies the broker.
"""
from __future__ import annotations

import selectors
import socket
import threading


class NetProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.cuts = 0
        self.bytes_forwarded = 0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.listener, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="netproxy", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Drop every open connection (RST) and refuse new ones until restore()."""
        with self._lock:
            self.up = False
            self.cuts += 1
            for a, b in self._pairs:
                for s in (a, b):
                    try:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                    self._close(s)
            self._pairs.clear()

    def restore(self) -> None:
        with self._lock:
            self.up = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.cut()
        self.listener.close()

    def _close(self, s: socket.socket) -> None:
        try:
            self._sel.unregister(s)
        except (KeyError, ValueError):
            pass
        try:
            s.close()
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.05):
                with self._lock:
                    if key.fileobj is self.listener:
                        self._accept()
                    else:
                        self._pump(key.fileobj, key.data)

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        if not self.up:
            client.close()
            return
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setblocking(True)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pairs.append((client, server))
        self._sel.register(client, selectors.EVENT_READ, server)
        self._sel.register(server, selectors.EVENT_READ, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            data = src.recv(262144)
            if data:
                dst.sendall(data)
                self.bytes_forwarded += len(data)
                return
        except OSError:
            pass
        for pair in [p for p in self._pairs if src in p]:
            self._pairs.remove(pair)
            for s in pair:
                self._close(s)
