"""Connections that must send their request's headers in time.

uvicorn closes a connection idle between requests, but not one that has sent part of a request:
1,100 connections that each sent one header line held every file descriptor under ``ulimit -n
1024``, and no one else could connect.  Here a connection has :data:`HEADER_SECONDS` from its
start, and from the end of each response, to send a whole request line and headers (the body has
its own limit in :mod:`.app`).
"""
from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0


class HeadersInTime(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose headers do not arrive in time."""

    deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in: the request runs
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request's headers

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.deadline = self.loop.call_later(HEADER_SECONDS, self._too_late)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_late(self) -> None:
        self.deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
