"""The live provider's reader of streamed bodies, fed the byte splits real servers produce."""

from __future__ import annotations

from collections.abc import AsyncIterator

from game.ai.openai_compat import sse_payloads
from tests.aio import run


class Body:
    """A response body arriving in the given network reads."""

    def __init__(self, *reads: bytes) -> None:
        self.reads = reads
        self.read = 0

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for data in self.reads:
            self.read += 1
            yield data


def batches(body: Body) -> list[list]:
    async def collect() -> list[list]:
        return [batch async for batch in sse_payloads(body)]

    return run(collect())


def test_one_read_with_several_chunks_comes_out_as_one_batch() -> None:
    body = Body(b'data: {"a": 1}\n\ndata: {"a": 2}\n\n', b'data: {"a": 3}\n\n')
    assert batches(body) == [[{"a": 1}, {"a": 2}], [{"a": 3}]]


def test_events_split_anywhere_and_crlf_split_across_reads() -> None:
    body = Body(b'data: {"a"', b": 1}\r", b"\n\r\n", b'data: {"b": 2}\r\n\r\n')
    assert batches(body) == [[{"a": 1}], [{"b": 2}]]


def test_comments_event_names_and_multiline_data() -> None:
    body = Body(b': keep-alive\n\nevent: message\ndata: {"a":\ndata: 1}\nid: 7\n\n')
    assert batches(body) == [[{"a": 1}]]


def test_done_stops_parsing_but_the_body_is_read_to_its_end() -> None:
    body = Body(b'data: {"a": 1}\n\ndata: [DONE]\n\ndata: not json\n\n', b"more", b"end")
    assert batches(body) == [[{"a": 1}]]
    assert body.read == 3  # drained: the connection can be reused


def test_a_last_event_without_its_blank_line_still_counts() -> None:
    assert batches(Body(b'data: {"a": 1}\n\ndata: {"a": 2}')) == [[{"a": 1}], [{"a": 2}]]
