"""DATA read a block at a time: for any stream, the same content and replies as aiosmtpd's
line-at-a-time reading, over real loopback connections."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from maild.transports.smtp import MaildSMTP
from maild.transports.smtp_data import (
    DataRead,
    Refusal,
    _has_dot_after_crlf,
    _lines_at_most,
    _unstuffed,
    read_data,
)

SIZE_LIMIT = 4000


class _LineByLine(MaildSMTP):
    """maild's server with aiosmtpd's own DATA, which reads a line at a time."""

    smtp_DATA = SMTP.smtp_DATA


@dataclass
class _Recorder:
    """Keeps the content of every DATA the server accepts."""

    contents: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.contents.append(bytes(envelope.original_content or b""))
        return f"250 OK {len(self.contents)}"


@dataclass
class _Server:
    port: int
    recorder: _Recorder


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, _Server]]:
    """aiosmtpd's reading and maild's, each on a loopback port of one event loop's."""
    loop = asyncio.new_event_loop()
    made: dict[str, _Server] = {}

    async def start() -> None:
        for name, server_class in (("aiosmtpd", _LineByLine), ("maild", MaildSMTP)):
            recorder = _Recorder()

            def factory(server_class: type[SMTP] = server_class,
                        recorder: _Recorder = recorder) -> SMTP:
                return server_class(recorder, hostname="data.test", data_size_limit=SIZE_LIMIT,
                                    enable_SMTPUTF8=True, decode_data=False)

            server = await loop.create_server(factory, "127.0.0.1", 0)
            made[name] = _Server(server.sockets[0].getsockname()[1], recorder)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield made
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _conversation(port: int, pieces: list[bytes]) -> bytes:
    """Open a session and send DATA's stream, QUIT included, in `pieces` (a pause after
    each); what the server answered from 354 on, until it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sendall(b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n"
                           b"RCPT TO:<support@data.test>\r\nDATA\r\n")
        received = bytearray()
        while b"\r\n354 " not in received:
            more = connection.recv(65536)
            assert more, received
            received += more
        answered_from = received.index(b"\r\n354 ") + 2
        for piece in pieces:
            connection.sendall(piece)
            time.sleep(0.0005)
        while more := connection.recv(65536):
            received += more
        return bytes(received[answered_from:])


def _ended(stream: bytes) -> bytes:
    """`stream` up to its first dot line, or with one added; then QUIT."""
    if stream.startswith(b".\r\n"):
        return b".\r\nQUIT\r\n"
    end = stream.find(b"\r\n.\r\n")
    if end >= 0:
        return stream[:end + 5] + b"QUIT\r\n"
    return stream + (b"" if stream.endswith(b"\r\n") or not stream else b"\r\n") + (
        b".\r\nQUIT\r\n")


def _both(servers: dict[str, _Server], pieces: list[bytes]) -> dict[str, tuple[bytes, list[bytes]]]:
    """What each server answered and accepted for the same stream sent the same way."""
    seen = {}
    for name, server in servers.items():
        server.recorder.contents.clear()
        answered = _conversation(server.port, pieces)
        seen[name] = (answered, list(server.recorder.contents))
    return seen


def _cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    return [stream[start:end] for start, end in itertools.pairwise(points)]


# Short pieces three times as often as long ones, so that most streams are taken whole.
_SHORT = [b".", b"..", b"a", b"Z", b" ", b"\t", b"\r", b"\n", b"\r\n", b".\r\n", b"\r\n.",
          b"\n.", b"\xc3\xa5", b"\x00", b"x" * 200, b"QUIT", b"MAIL FROM:<b@c.se>", b"="]
_LONG = [b"y" * 997, b"z" * 999, b"w" * 1000, b"v" * 1001, b"u" * 1002, b"t" * 1500]
_PIECES = _SHORT * 3 + _LONG
_LINE_ENDS = [b"\r\n"] * 6 + [b"\n", b"\r", b""]
_LINES = st.lists(st.tuples(st.lists(st.sampled_from(_PIECES), max_size=4).map(b"".join),
                            st.sampled_from(_LINE_ENDS)).map(b"".join), max_size=12)
_FULL = [b"b" * 999 + b"\r\n"] * 3  # 3,003 bytes of the 4,000 allowed


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_LINES, cuts=st.lists(st.integers(min_value=0), max_size=6))
@example(lines=[], cuts=[])  # an empty message: the dot line at once
@example(lines=[b"..a\r\n", b".\r\n", b"after\r\n"], cuts=[1, 3])  # stuffed, then the end
@example(lines=[b"a" * 1002 + b"\r\n", b".\r\n"], cuts=[1000])  # too long by one
@example(lines=[b"b" * 999 + b"\r\n"] * 4 + [b"c" * 997 + b"\r\n"], cuts=[])  # 4000 + 999
@example(lines=[b"d" * 998 + b"\r\n"] * 4 + [b"e" * 1000 + b"\r\n"], cuts=[])  # both at once
@example(lines=[b"f" * 998 + b"\r\n"] * 3 + [b"g" * 1200 + b"\r\n"], cuts=[5])  # long first
@example(lines=[b"end.\r\n", b".\r", b"\n"], cuts=[6, 8])  # a sentence's dot; the end split
@example(lines=[b"w" * 1000 + b"\r\n"], cuts=[])  # 1,002 bytes with its CRLF: too long
@example(lines=[b"z" * 999 + b"\r\n", b"a\r\n"], cuts=[])  # 1,001 bytes: not too long
@example(lines=[*_FULL, b"c" * 995 + b"\r\n"], cuts=[1500, 3003, 3500])  # 4,000 bytes
@example(lines=[*_FULL, b"c" * 996 + b"\r\n"], cuts=[1500, 3003, 3500])  # 4,001 bytes
@example(lines=[b"a\n.b\r\n", b"\r..c\r\n", b"\n.\r\n"], cuts=[2])  # dots after bare LF, CR
def test_data_is_read_as_aiosmtpd_reads_it(servers: dict[str, _Server], lines: list[bytes],
                                           cuts: list[int]) -> None:
    pieces = _cut(_ended(b"".join(lines)), cuts)
    seen = _both(servers, pieces)
    assert seen["maild"] == seen["aiosmtpd"]


_BYTES = st.lists(st.sampled_from([b".", b"\r", b"\n", b"\r\n", b"a", b"bb", b"c" * 7]),
                  max_size=60).map(b"".join)


@settings(max_examples=2000, deadline=None)
@given(content=_BYTES, longest=st.integers(min_value=0, max_value=12))
def test_the_quick_line_length_check_agrees_with_splitting_the_lines(content: bytes,
                                                                     longest: int) -> None:
    text = content + b"\r\n" + b"rest"  # a line, then the beginning of the next
    end = len(content) + 2
    assert _lines_at_most(text, end, longest) == (
        max(map(len, content.split(b"\r\n"))) <= longest)


@settings(max_examples=2000, deadline=None)
@given(content=_BYTES, looked_at=st.sampled_from([0, 1, 2, 3, 64]))
def test_dots_are_unstuffed_as_aiosmtpd_unstuffs_each_line(content: bytes,
                                                           looked_at: int) -> None:
    lines = content.split(b"\r\n")
    assert _has_dot_after_crlf(content, looked_at) == any(
        line.startswith(b".") for line in lines[1:])
    assert _unstuffed(content) == b"\r\n".join(
        line[1:] if line.startswith(b".") else line for line in lines)


@pytest.mark.parametrize("flood", [b"t" * 65536, b"s" * 998 + b"\r\n"])
def test_refused_content_is_not_kept_while_it_is_read(flood: bytes) -> None:
    """20 MB of one line, or of lines over the size, read with little more memory than
    the reader's buffer."""
    async def reading() -> tuple[DataRead, int]:
        reader = asyncio.StreamReader(limit=1001)

        async def feed() -> None:
            sent = 0
            while sent < 20_000_000:
                reader.feed_data(flood * max(1, 65536 // len(flood)))
                sent += len(flood) * max(1, 65536 // len(flood))
                await asyncio.sleep(0)
            reader.feed_data(b"\r\n.\r\n")

        tracemalloc.start()
        try:
            feeding = asyncio.ensure_future(feed())
            read = await read_data(reader, line_limit=1001, size_limit=SIZE_LIMIT)
            await feeding
            return read, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    read, peak = asyncio.run(reading())
    assert read.content is None
    assert read.refusal is (Refusal.LINE_TOO_LONG if b"\r\n" not in flood
                            else Refusal.TOO_MUCH_DATA)
    assert peak < 2_000_000, peak


def test_content_is_unstuffed_and_commands_after_the_dot_are_answered(
        servers: dict[str, _Server]) -> None:
    stream = (b"Subject: dots\r\n\r\n..leading\r\n...\r\nmid.dle\r\n.\r\n"
              b"NOOP\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@data.test>\r\nDATA\r\n"
              b"second\r\n.\r\nQUIT\r\n")
    answered, contents = _both(servers, [stream])["maild"]
    assert contents == [b"Subject: dots\r\n\r\n.leading\r\n..\r\nmid.dle\r\n",
                        b"second\r\n"]
    replies = [line[:3] for line in answered.split(b"\r\n") if line]
    assert replies == [b"354", b"250", b"250", b"250", b"250", b"354", b"250", b"221"]


@pytest.mark.parametrize(("line", "reply"), [
    (b"h" * 1100 + b"\r\n", b"500 Line too long (see RFC5321 4.5.3.1.6)"),
    ((b"i" * 900 + b"\r\n") * 5, b"552 5.3.4 Message too big for this system (at most 4000 "
                                  b"bytes)"),
])
def test_refused_content_is_read_to_its_end_and_kept_nowhere(
        servers: dict[str, _Server], line: bytes, reply: bytes) -> None:
    answered, contents = _both(servers, [line + b"more\r\n.\r\nQUIT\r\n"])["maild"]
    assert contents == []
    assert answered.split(b"\r\n")[1] == reply
    assert answered.split(b"\r\n")[2].startswith(b"221")


def test_a_client_gone_in_the_middle_of_data_leaves_nothing_and_the_server_serving(
        servers: dict[str, _Server]) -> None:
    server = servers["maild"]
    server.recorder.contents.clear()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as connection:
        connection.sendall(b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n"
                           b"RCPT TO:<support@data.test>\r\nDATA\r\n")
        received = b""
        while b"354 " not in received:
            received += connection.recv(65536)
        connection.sendall(b"Subject: cut off\r\n\r\nhalf a mess")
    answered, contents = _both({"maild": server}, [b"whole\r\n.\r\nQUIT\r\n"])["maild"]
    assert contents == [b"whole\r\n"]
    assert b"250 OK 1" in answered
