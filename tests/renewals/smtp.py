"""Real SMTP endpoints for the delivery tests: an aiosmtpd sink on 127.0.0.1
(a random port) that records what it receives, and a server that accepts
connections and never answers (a hung SMTP server)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import threading
import time

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)
# aiosmtpd's own logger (the sink's side of the conversation, not ours).
SINK_LOGGER = "mail.log"


@dataclasses.dataclass(frozen=True)
class Received:
    message_id: str
    recipients: tuple[str, ...]
    session: int
    content: bytes = b""  # the message as received (headers and body)


class SinkHandler:
    """Records each message when its DATA arrives, before replying.

    - ``refuse``: recipients answered ``refuse_code`` (550, or 450: try later),
      with the address in the reply, as real servers do;
    - ``hold_at``: the n-th message (1-based) is recorded, then its reply
      waits until ``release`` is set (a sender caught mid-batch);
    - ``hold_until_senders``: the first message's reply waits until that many
      distinct sessions have started a mail transaction (senders really at
      work at the same time); ``concurrent`` tells whether that happened."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.refuse_code = 550
        self.hold_at: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.hold_until_senders: int | None = None
        self.concurrent = threading.Event()
        self._senders: set[int] = set()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self._senders.add(id(session))
            if self.hold_until_senders and len(self._senders) >= self.hold_until_senders:
                self.concurrent.set()
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            if self.refuse_code == 450:
                return f"450 4.2.1 <{address}>: Mailbox busy, try again later"
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        match = MESSAGE_ID.search(envelope.content)
        with self.lock:
            self.received.append(
                Received(
                    message_id=match.group(1).decode() if match else "",
                    recipients=tuple(envelope.rcpt_tos),
                    session=id(session),
                    content=envelope.content,
                )
            )
            n = len(self.received)
        if n == self.hold_at:
            self.holding.set()
            await self._wait(self.release.is_set)
        if n == 1 and self.hold_until_senders:
            await self._wait(self.concurrent.is_set)
        return "250 2.0.0 Message accepted"

    @staticmethod
    async def _wait(predicate, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while not predicate() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def message_ids(self) -> list[str]:
        with self.lock:
            return [r.message_id for r in self.received]


class _RandomPortController(Controller):
    """aiosmtpd's Controller, bound to a free port chosen by the kernel."""

    def _create_server(self):
        async def create():
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return create()


class SmtpSink:
    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.controller = _RandomPortController(
            self.handler, hostname="127.0.0.1", server_hostname="sink.test"
        )

    @property
    def port(self) -> int:
        return self.controller.port

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.handler.release.set()
        self.handler.concurrent.set()
        self.controller.stop()


class HungServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HungServer:
        self._thread.start()
        return self

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._clients.append(client)  # held open, never answered
            self.accepted.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for client in self._clients:
            client.close()
        self.sock.close()


def closed_port() -> int:
    """A port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
