"""How `runbook serve` listens (engine/service/server.py)."""

from __future__ import annotations

import asyncio
import socket

from engine.service.server import listen_socket


def test_answers_on_the_listening_socket_are_sent_at_once() -> None:
    """Each connection asyncio accepts on the socket has Nagle's algorithm off: with it on,
    an answer written in two parts (headers, then body) waited for the client's delayed
    ACK, 40 ms per request on a kept-alive connection (found by the intake benchmark)."""
    sock = listen_socket("127.0.0.1:0")
    port = sock.getsockname()[1]

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted = transport.get_extra_info("socket")
                seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Accept, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(seen, 10)
            finally:
                writer.close()

    assert asyncio.run(accepted_nodelay()) != 0
