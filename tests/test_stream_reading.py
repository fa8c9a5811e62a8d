"""The live provider reads the streamed bodies real servers send, split the ways networks split
them: a server on 127.0.0.1 writes the exact bytes given, one network read after another, and
the provider's `stream_turn` (through the openai SDK's event stream) must yield the narration."""

from __future__ import annotations

import asyncio
import json

import pytest

from game.ai.client import make_client
from game.ai.openai_compat import OpenAICompatProvider, ThinkFilter
from game.ai.provider import CutReply, ProviderError, TurnRequest
from tests.aio import run
from tests.test_mock_narrator import BASE


def chunk(text: str) -> bytes:
    """One chat completion chunk's JSON carrying `text`."""
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}).encode()


async def serve_and_read(*reads: bytes, into: list[str] | None = None) -> tuple[list[str], int]:
    """Serve one streamed response made of `reads`, read it with the provider.

    Returns the pieces the provider yielded and how many reads the server got to write (the
    body read to its end lets the connection be reused). `into` collects the pieces as they
    come, for a reply that ends by raising."""
    written = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        for data in reads:
            writer.write(data)
            await writer.drain()
            written += 1
            await asyncio.sleep(0.02)  # each write its own network read
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}/v1", "", connect=5, read=5)
    provider = OpenAICompatProvider(client, "any-model")
    try:
        pieces = [] if into is None else into
        async for piece in provider.stream_turn(TurnRequest([], BASE)):
            pieces.append(piece)
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    return pieces, written


def test_events_split_anywhere_and_crlf_split_across_reads() -> None:
    data = b"data: " + chunk("Rain ") + b"\r\n\r\ndata: " + chunk("falls.") + b"\r\n\r\n"
    reads = [data[:9], data[9:30], data[30:-5], data[-5:-3], data[-3:], b"data: [DONE]\r\n\r\n"]
    pieces, _ = run(serve_and_read(*reads))
    assert "".join(pieces) == "Rain falls."


def test_comments_event_names_and_multiline_data() -> None:
    body = chunk("Lamps hum.")
    half = len(b'{"choices":')  # data lines are joined with a newline: split between tokens
    reads = [
        b": keep-alive\n\n",
        b"event: message\ndata: " + body[:half] + b"\ndata: " + body[half:] + b"\nid: 7\n\n",
        b"data: [DONE]\n\n",
    ]
    pieces, _ = run(serve_and_read(*reads))
    assert "".join(pieces) == "Lamps hum."


def test_done_ends_the_reply_and_the_body_is_read_to_its_end() -> None:
    reads = [b"data: " + chunk("The end.") + b"\n\n", b"data: [DONE]\n\n", b"data: not json\n\n"]
    pieces, written = run(serve_and_read(*reads))
    assert "".join(pieces) == "The end."
    assert written == 3


def test_an_error_object_in_place_of_a_chunk_is_a_readable_failure() -> None:
    error = json.dumps({"error": {"message": "model overloaded", "type": "server_error"}})
    reads = [b"data: " + chunk("Rain ") + b"\n\n", b"data: " + error.encode() + b"\n\n"]
    with pytest.raises(ProviderError, match="model overloaded"):
        run(serve_and_read(*reads))


def test_a_piece_that_is_not_json_is_a_readable_failure() -> None:
    reads = [b"data: " + chunk("Rain ") + b"\n\n", b'data: {"choices": [{"delta": \n\n']
    with pytest.raises(ProviderError, match="malformed"):
        run(serve_and_read(*reads))


def test_an_event_cut_off_before_its_blank_line_is_not_read() -> None:
    """As the SSE standard says: an unterminated event at the end of the body is discarded;
    and a body that ends with no [DONE] and no finish reason is a cut reply, not a whole one."""
    reads = [b"data: " + chunk("One ") + b"\n\n", b"data: " + chunk("two.")]
    pieces: list[str] = []
    with pytest.raises(CutReply):
        run(serve_and_read(*reads, into=pieces))
    assert pieces == ["One "]


def test_a_request_on_a_connection_the_server_just_closed_is_sent_again() -> None:
    # before: llama-server closes the connection after each streamed reply while announcing
    # keep-alive; a request sent in that instant failed ("Server disconnected without sending
    # a response"), and the turn or the start-up probe with it (2 of 40 in a row there)
    requests = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        first = True
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            requests += 1
            if not first:  # the kept-alive connection's next request: closed, no answer
                break
            first = False
            body = b"data: " + chunk("Hello there.") + b"\n\ndata: [DONE]\n\n"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        writer.close()

    async def two_turns() -> list[list[str]]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = make_client(f"http://127.0.0.1:{port}/v1", "", connect=5, read=5)
        provider = OpenAICompatProvider(client, "any-model")
        try:
            return [
                [piece async for piece in provider.stream_turn(TurnRequest([], BASE))]
                for _ in range(2)
            ]
        finally:
            await client.close()
            server.close()

    assert run(two_turns()) == [["Hello there."], ["Hello there."]]
    assert requests == 3  # the second turn's request, closed on, then sent again


@pytest.mark.parametrize(
    ("pieces", "story"),
    [
        (["<thi", "nk>plan", " it</th", "ink>\n", "Rain."], "Rain."),
        (["  <think>a</think>", "Rain."], "Rain."),
        (["<b>Rain.</b>"], "<b>Rain.</b>"),  # a tag, but not a thinking block: story
        (["<", "th"], "<th"),  # a reply that only looked like a tag's start
        (["Rain <think>not at the start</think>."], "Rain <think>not at the start</think>."),
        (["<think>never closed"], ""),
    ],
)
def test_a_thinking_block_at_the_start_is_held_back(pieces: list[str], story: str) -> None:
    reasoning = ThinkFilter()
    out = "".join(reasoning.feed(piece)[0] for piece in pieces) + reasoning.flush()
    assert out == story
