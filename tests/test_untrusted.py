"""Decoding JSON from outside: the stepwise decoder for large uploads reads as decode_json."""

from __future__ import annotations

import json
import random

import pytest

from game import untrusted
from game.untrusted import decode_json, decode_json_in_steps


def random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.choice(
        ["str", "int", "float", "bool", "null", "list", "dict"][: 7 if depth < 3 else 5]
    )
    if kind == "str":
        return "".join(rng.choice('ab "\\\n\x00é🐉\ud800') for _ in range(rng.randrange(6)))
    if kind == "int":
        return rng.randrange(-(10**6), 10**6)
    if kind == "float":
        return rng.choice([0.5, -2.25, 1e300, float("nan"), float("inf")])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {f"k{i}\ud800": random_value(rng, depth + 1) for i in range(rng.randrange(5))}


@pytest.mark.parametrize("seed", range(200))
def test_reads_what_decode_json_reads(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    # windows of a few bytes: values, numbers and UTF-8 sequences cut at every place
    monkeypatch.setattr(untrusted, "WINDOW_BYTES", rng.choice([1, 2, 3, 7, 64, 1 << 20]))
    value = {f"key{i}": random_value(rng) for i in range(rng.randrange(6))}
    value["messages"] = [random_value(rng) for _ in range(rng.randrange(450))]
    indent = rng.choice([None, 0, 1, "\t"])
    text = rng.choice(["", " ", "\n"]) + json.dumps(value, indent=indent) + rng.choice(["", "\n "])
    expected = decode_json(text)
    assert json.dumps(decode_json_in_steps(text.encode())) == json.dumps(expected)
    assert decode_json_in_steps(("\ufeff" + text).encode()) == decode_json_in_steps(text.encode())


@pytest.mark.parametrize("window", [1, 5, 1 << 20])
@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"a" 1}',
        '{"a": 1,}',
        '{"a": [1 2]}',
        '{"a": [1,]}',
        '{"a": 1} x',
        "{a: 1}",
        "[1, 2",
    ],
)
def test_refuses_what_decode_json_refuses(
    text: str, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(untrusted, "WINDOW_BYTES", window)
    with pytest.raises(json.JSONDecodeError):
        decode_json(text)
    with pytest.raises(json.JSONDecodeError):
        decode_json_in_steps(text.encode())


def test_a_top_level_array_or_scalar_is_read() -> None:
    assert decode_json_in_steps(b' [1, NaN, {"a": [2]}] ') == [1, None, {"a": [2]}]
    assert decode_json_in_steps(b'"x"') == "x"
    assert decode_json_in_steps(b"-1.5e3") == -1500.0


@pytest.mark.parametrize("garbage", [b"x" * 5_000_000, b'{"a": x' + b"y" * 5_000_000])
def test_garbage_fails_without_reading_the_rest(garbage: bytes) -> None:
    # A 58 MB upload that was not JSON used to be read whole first, copying the growing text
    # at every megabyte: 1.5 s with the GIL held, every other request of the process waiting.
    reader = untrusted._StepwiseReader(garbage)
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        reader.document()
    assert reader.read <= untrusted.WINDOW_BYTES


def test_the_window_stays_small_however_large_the_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each key once doubled the window until the whole document was text: a 58 MB export was
    # copied again and again, in C calls that held the GIL for up to 0.4 s.
    monkeypatch.setattr(untrusted, "WINDOW_BYTES", 4096)
    messages = [{"id": str(n), "content": "y" * 300, "depth": n} for n in range(2000)]
    data = json.dumps({"format": "arcadia-game", "messages": messages}).encode()
    reader = untrusted._StepwiseReader(data)
    widest = 0
    more = reader.more

    def watched(size: int = 0) -> bool:
        nonlocal widest
        read = more(size)
        widest = max(widest, len(reader.text))
        return read

    monkeypatch.setattr(reader, "more", watched)
    assert reader.document() == json.loads(data)
    assert widest <= 8 * 4096  # of a 700 kB document
