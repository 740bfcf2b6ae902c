"""Serve an app on loopback from a notebook or a test (taught in 07_secure_deployment).

:class:`ApiServer` runs uvicorn in a background thread on 127.0.0.1 and a free port
chosen by the operating system, and stops it cleanly: no stray process, no fixed port, and
it can be started again in the same kernel.
"""
from __future__ import annotations

import socket
import threading
import time

from utils import validation as v


class ApiServer:
    """``with ApiServer(app) as server: httpx.get(server.url + "/health")`` (taught in 07_secure_deployment)."""

    def __init__(self, app, host: str = "127.0.0.1", timeout_s: float = 10.0, log_level: str = "warning"):
        if host not in ("127.0.0.1", "::1", "localhost"):
            v.fail("ApiServer", f"host = {host!r}", "the course serves on loopback only (127.0.0.1)")
        self.app, self.host, self.timeout_s = app, host, v.real(timeout_s, "timeout_s", "ApiServer", 0.1, 600)
        # "critical" keeps uvicorn from printing the traceback of a request the app fails on
        self.log_level = v.choice(log_level, "log_level", "ApiServer", ("debug", "info", "warning", "error", "critical"))
        self._server = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            v.fail("ApiServer.url", "the server is not running", "start it first (with ApiServer(app) as s: ...)")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "ApiServer":
        import uvicorn

        if self.running:
            return self
        # proto IPPROTO_TCP: asyncio then sets TCP_NODELAY on each connection (with proto 0 it does not,
        # and Nagle plus delayed ACKs add about 40 ms to every response)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level=self.log_level, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"api-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ApiServer: uvicorn did not start on {self.host} within {self.timeout_s} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.timeout_s)
        if self._sock is not None:
            self._sock.close()
        self._server, self._thread, self._sock, self.port = None, None, None, None

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def client(url: str, token: str | None = None, timeout_s: float = 10.0):
    """An ``httpx.Client`` for the API at ``url``, sending ``token`` as a bearer token
    (taught in 07_secure_deployment)."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout_s, trust_env=False)
