"""Worker "hosts" for the partition test (issue 17): network namespaces made
by the test itself, each joined to this machine by a veth pair, and a TCP
relay on the machine's side of each link to the PostgreSQL and Redis that
listen on 127.0.0.1 only (their configuration is never changed).

Cutting a host brings the machine's end of its veth down: the host's packets
go nowhere and nothing is sent back, so its TCP connections hang, neither
closed nor reset, as they do when a cable or a switch fails. Bringing the end
up again restores them. Needs root and iproute2 (``ip``)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

PREFIX = "bopart"  # every namespace and link this module makes: bopart<pid><letter>


def require_iproute2() -> str | None:
    """Why the namespaces cannot be made here, in one line, or None."""
    if shutil.which("ip") is None:
        return (
            "the partition test needs iproute2's `ip` (network namespaces): "
            "apt-get install iproute2"
        )
    if os.geteuid() != 0:
        return "the partition test makes network namespaces and needs root"
    return None


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip", "netns", "exec", netns, "ip", *args] if netns else ["ip", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done


def remove_stale() -> None:
    """Namespaces and links left by a run of this test that was killed (its
    pid is gone): deleting a namespace deletes its end of the link."""
    listed = ip("netns", "list", check=False).stdout
    for name in re.findall(rf"^({PREFIX}(\d+)[a-z])\b", listed, flags=re.M):
        if not _alive(int(name[1])):
            ip("netns", "del", name[0], check=False)
    links = ip("-o", "link", "show", check=False).stdout
    for name in re.findall(rf"^\d+: ({PREFIX}(\d+)[a-z]h)@", links, flags=re.M):
        if not _alive(int(name[1])):
            ip("link", "del", name[0], check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_subnets(count: int) -> list[ipaddress.IPv4Network]:
    """``count`` /30 networks in 10.213.0.0/16 that no interface here uses."""
    used = ip("-4", "-o", "addr", "show", check=False).stdout
    taken = {ipaddress.ip_interface(a).network for a in re.findall(r"inet (\S+)", used)}
    pool = list(ipaddress.ip_network("10.213.0.0/16").subnets(new_prefix=30))
    random.shuffle(pool)
    free = [n for n in pool if not any(n.overlaps(t) for t in taken)]
    return free[:count]


@dataclass
class Host:
    """One worker host: namespace ``netns``, reached over a veth whose machine
    end is ``link`` with address ``gateway``; the host's end has ``address``."""

    netns: str
    link: str
    gateway: str
    address: str

    @classmethod
    def make(cls, letter: str, subnet: ipaddress.IPv4Network) -> Host:
        name = f"{PREFIX}{os.getpid()}{letter}"
        gateway, address = (str(a) for a in list(subnet.hosts())[:2])
        host = cls(netns=name, link=f"{name}h", gateway=gateway, address=address)
        inner = f"{name}n"
        ip("netns", "add", name)
        ip("link", "add", host.link, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", name)
        ip("addr", "add", f"{gateway}/30", "dev", host.link)
        ip("link", "set", host.link, "up")
        ip("link", "set", "lo", "up", netns=name)
        ip("addr", "add", f"{address}/30", "dev", inner, netns=name)
        ip("link", "set", inner, "up", netns=name)
        # Everything else (here: nothing) through the machine's end.
        ip("route", "add", "default", "via", gateway, netns=name)
        return host

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def cut(self) -> None:
        ip("link", "set", self.link, "down")

    def restore(self) -> None:
        ip("link", "set", self.link, "up")

    def is_cut(self) -> bool:
        return "state DOWN" in ip("link", "show", self.link, check=False).stdout

    def remove(self) -> None:
        ip("netns", "del", self.netns, check=False)
        ip("link", "del", self.link, check=False)


class Relay:
    """TCP forwarders, in a thread of their own: each (address, port) listens
    on a host's gateway address and forwards to 127.0.0.1:port. When either
    side closes, the other is closed too (after what was already read), so a
    session the server ends reaches the host as soon as its link is back."""

    def __init__(self, listen: list[tuple[str, int]]):
        self.listen = listen
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> Relay:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the relay did not start within 10 s")
        if self._error:
            raise RuntimeError(f"the relay could not listen: {self._error}")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._shutdown)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            for address, port in self.listen:
                server = self._loop.run_until_complete(
                    asyncio.start_server(
                        lambda r, w, port=port: self._forward(r, w, port), address, port
                    )
                )
                self._servers.append(server)
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        self._loop.call_later(0.2, self._loop.stop)

    async def _forward(self, down_r, down_w, port: int) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        up_w = None
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
            pumps = [
                asyncio.ensure_future(self._pump(down_r, up_w)),
                asyncio.ensure_future(self._pump(up_r, down_w)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (up_w, down_w):
                if writer is not None:
                    writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
