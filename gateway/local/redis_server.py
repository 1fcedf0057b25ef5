"""A private ``redis-server`` for the demo and the tests when no Redis is reachable."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis


def reachable(url: str, timeout: float = 1.0) -> bool:
    """True if a Redis server answers PING at ``url``."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PrivateRedis:
    """A redis-server child process on a free loopback port, keeping nothing on disk."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, port: int | None = None) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "no Redis is reachable and redis-server is not installed "
                "(Debian: apt-get install redis-server)"
            )
        port = port or free_port()
        directory = Path(tempfile.mkdtemp(prefix="tthc-redis-"))
        process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Not in the terminal's process group: a Ctrl+C must not stop Redis before the
            # demo has stopped the worker that uses it; the demo stops it last.
            start_new_session=True,
        )
        instance = cls(process, port, directory)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if reachable(instance.url, 0.2):
                return instance
            if process.poll() is not None:
                break
            time.sleep(0.05)
        instance.stop()
        raise RuntimeError(f"redis-server did not start on port {port}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
