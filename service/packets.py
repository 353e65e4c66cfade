"""Pipes between server processes that a process killed mid-message cannot break.

Requests and responses cross between HTTP servers and inference workers over pipes in Linux's
packet mode (`O_DIRECT`): every write of at most `PIPE_BUF` bytes is one packet, and every read
takes one whole packet. The kernel does both atomically, so several processes can write one
pipe without a lock between them, and a process killed at any moment leaves whole packets
behind: never a byte stream cut mid-message, which would leave the next reader parsing
garbage from there on.

A message too big for one packet is cut into pieces (`pieces`), each tagged with the writer's
pid, a message number, its index and the count. Requests (one writer, the HTTP server; several
readers, the workers) are read under a lock the kernel releases when its holder dies (see
`service.request_queue`); pieces left by a reader killed mid-message are recognised (no first
piece before them) and dropped by the next. Responses (several writers, one reader) need no
lock: the reader joins each writer's pieces (`Assembler`), and drops what a writer killed
mid-message left unfinished once its death is reported.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pickle
import select
import struct
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any

PACKET_BYTES = select.PIPE_BUF  # the largest write the kernel keeps whole: 4096 on Linux
PIPE_BYTES = 1 << 20  # Linux's default cap for unprivileged pipes (fs.pipe-max-size)
INLINE, PIECE = b"P", b"C"  # a whole pickle follows, or a piece of one
PIECE_HEADER = struct.Struct("!IQII")  # writer pid, message number, piece index, piece count
PIECE_BYTES = PACKET_BYTES - 1 - PIECE_HEADER.size
_numbers = itertools.count()  # message numbers, unique with the pid


def packet_pipe() -> tuple[Connection, Connection]:
    """One packet-mode pipe (read end, write end) with 1 MiB of buffer where the OS allows.

    The read end is non-blocking: a reader that lost a packet to another reader gets
    `BlockingIOError` instead of waiting. With 64 KiB instead of 1 MiB, a few many-series
    messages filled the pipe and the writer waited on the reader chunk by chunk (measured at 64
    concurrent requests of 32 series: 70 requests/s with 64 KiB, 130 with 1 MiB). In packet
    mode every packet takes one page of that buffer, so the pipe holds 256 packets.
    """
    direct = getattr(os, "O_DIRECT", None)
    if direct is None:
        raise OSError("packet-mode pipes (O_DIRECT) need Linux")
    read_fd, write_fd = os.pipe2(direct | os.O_CLOEXEC)
    with suppress(OSError):  # above the system's cap: keep the default
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    os.set_blocking(read_fd, False)
    return Connection(read_fd, writable=False), Connection(write_fd, readable=False)


def packet_pipes(count: int) -> tuple[list[Connection], list[Connection]]:
    """`count` packet pipes: their read ends and their write ends."""
    pipes = [packet_pipe() for _ in range(count)]
    return [r for r, _ in pipes], [w for _, w in pipes]


def read_packet(fd: int) -> bytes | None:
    """The next packet on a non-blocking read end, or None when another reader took it.

    Raises:
        EOFError: every write end is closed.
    """
    try:
        packet = os.read(fd, PACKET_BYTES)
    except BlockingIOError:
        return None
    if not packet:
        raise EOFError("pipe closed")
    return packet


def write_packet(fd: int, packet: bytes) -> None:
    """Write one packet on a blocking write end: all of it, or wait until the pipe has room."""
    if len(packet) > PACKET_BYTES:
        raise ValueError(f"a packet holds at most {PACKET_BYTES} bytes, got {len(packet)}")
    written = os.write(fd, packet)
    if written != len(packet):  # the kernel never splits a write of <= PIPE_BUF bytes
        raise OSError(f"short write of a packet: {written} of {len(packet)} bytes")


def pieces(message: Any) -> list[bytes]:
    """`message` as packets: one if it fits, else pieces for an `Assembler` to join."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) < PACKET_BYTES:
        return [INLINE + data]
    pid, number = os.getpid(), next(_numbers)
    count = -(-len(data) // PIECE_BYTES)
    return [
        PIECE
        + PIECE_HEADER.pack(pid, number, index, count)
        + data[index * PIECE_BYTES : (index + 1) * PIECE_BYTES]
        for index in range(count)
    ]


def piece_header(packet: bytes) -> tuple[int, int, int, int] | None:
    """(pid, message number, index, count) of a piece; None for a whole message."""
    kind = packet[:1]
    if kind == INLINE:
        return None
    if kind != PIECE:
        raise ValueError(f"not a message packet (starts with {kind!r})")
    pid, number, index, count = PIECE_HEADER.unpack_from(packet, 1)
    return pid, number, index, count


def join(packets: list[bytes]) -> Any:
    """The message that one whole packet, or all the pieces of one, in order, carry."""
    if len(packets) == 1 and packets[0][:1] == INLINE:
        return pickle.loads(packets[0][1:])
    return pickle.loads(b"".join(p[1 + PIECE_HEADER.size :] for p in packets))


class Assembler:
    """Joins the pieces of messages from many writers, whose packets interleave in one pipe."""

    def __init__(self) -> None:
        self._parts: dict[tuple[int, int], list[bytes]] = {}  # (pid, number) -> pieces so far

    def feed(self, packet: bytes) -> tuple[bool, Any]:
        """(True, message) once `packet` completes one, else (False, None)."""
        header = piece_header(packet)
        if header is None:
            return True, join([packet])
        pid, number, index, count = header
        parts = self._parts.setdefault((pid, number), [])
        if index != len(parts):  # one writer's pieces arrive in order: this cannot happen
            raise ValueError(f"piece {index} of message {number} from pid {pid} out of order")
        parts.append(packet)
        if len(parts) < count:
            return False, None
        del self._parts[(pid, number)]
        return True, join(parts)

    def forget(self, pid: int) -> int:
        """Drop what a dead writer left unfinished; how many messages that was."""
        unfinished = [key for key in self._parts if key[0] == pid]
        for key in unfinished:
            del self._parts[key]
        return len(unfinished)
