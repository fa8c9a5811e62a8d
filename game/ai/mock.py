"""The mock narrator: writes the same JSON turn a live model is asked for, and streams it.

Turns are deterministic per game, turn and action, built from the world's sentence banks,
the route, the companion's lines and the player's action, so mock games feel alive while
everything after the raw output (parsing, state merge, storage) is the live code path.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from game.ai.backend_errors import find_in_band_error, from_exception, from_status
from game.ai.provider import Capabilities, ProviderError, SummaryRequest, TurnContext, TurnRequest

_FIRST_PERSON = [
    (r"\bI am\b", "you are"),
    (r"\bI'm\b", "you're"),
    (r"\bI\b", "you"),
    (r"\bmy\b", "your"),
    (r"\bme\b", "you"),
    (r"\bmyself\b", "yourself"),
]
_LEADS = [
    "You {act}.",
    "Without waiting for a better idea, you {act}.",
    "You take a breath and {act}.",
    "It feels like the only sensible thing, so you {act}.",
    "Carefully, you {act}.",
    "You {act}, and the moment seems to hold its breath.",
]
_SPEECH = [
    '{cast} glances at you. "{line}"',
    '"{line}" {cast} says, half to themselves.',
    '{cast} falls into step beside you. "{line}"',
    '"{line}" {cast} murmurs.',
]
_ITEMS = [
    "a folded note",
    "a brass key",
    "a stub of candle",
    "a smooth grey stone",
    "a torn map corner",
    "a little bell",
    "a sealed letter",
    "a copper coin",
]


def _second_person(action: str) -> str:
    text = " ".join(action.split()).rstrip(".!?")
    for pattern, repl in _FIRST_PERSON:
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    text = re.sub(r"^you\s+", "", text, flags=re.IGNORECASE)
    return text[:1].lower() + text[1:] if text else "wait"


def compose_turn(ctx: TurnContext) -> dict:
    """The turn as the JSON object a model would write."""
    # Another alternative of the same turn (a regenerate) gets a seed of its own.
    seed = f"{ctx.game_id}:{ctx.turn_number}:{ctx.action}"
    rng = random.Random(f"{seed}:{ctx.variant}" if ctx.variant else seed)
    bank = ctx.world.mock
    names = {"player": ctx.player_name, "cast": ctx.cast.name}

    if ctx.turn_number == 0:
        if ctx.card is not None:  # a card with no greeting of its own: meet its character
            narration = f"You find {ctx.cast.name} waiting for you. {ctx.cast.description}".strip()
        else:
            narration = ctx.route.opening.strip().format(**names)
        if ctx.origin:
            narration += f"\n\nYou have not forgotten where you come from: {ctx.origin.strip()}"
        if ctx.variant:
            narration += "\n\n" + " ".join(rng.sample(bank.sights, 2))
        return {
            "narration": narration,
            "choices": ctx.route.choices,
            "hint": ctx.route.hint,
            "state": {"notes": {"location": ctx.route.location}},
            "scene": _scene(ctx.route.location, narration, True),
        }

    place = rng.choice(bank.places)
    sights = rng.sample(bank.sights, 2)
    line = rng.choice(ctx.cast.lines).format(**names)
    lead = rng.choice(_LEADS).format(act=_second_person(ctx.action))
    paragraphs = [
        f"{lead} {sights[0]}",
        f"{rng.choice(_SPEECH).format(cast=ctx.cast.name, line=line)} {rng.choice(bank.twists)}",
    ]
    if rng.random() < 0.6:
        paragraphs.append(f"Before long you reach {place}. {sights[1]}")

    meters = dict(ctx.state.meters)
    changes: dict[str, int] = {}
    for name in rng.sample(sorted(meters), min(len(meters), rng.randint(1, 2))):
        delta = rng.choice([-1, 1]) * rng.randint(4, 15)
        changes[name] = max(0, min(100, meters[name] + delta))

    state: dict = {"meters": changes, "notes": {"location": place[:1].upper() + place[1:]}}
    if rng.random() < 0.25:
        state["add"] = [rng.choice(_ITEMS)]

    taken = ctx.action.strip().lower()
    pool = [c for c in bank.choices if c.lower() != taken]
    choices = rng.sample(pool, rng.choice([2, 3, 3, 3, 4]) - 1)
    choices.insert(rng.randrange(len(choices) + 1), f"Ask {ctx.cast.name} what they make of it")

    narration = "\n\n".join(paragraphs)
    return {
        "narration": narration,
        "choices": choices,
        "hint": rng.choice(bank.hints),
        "state": state,
        "scene": _scene(place, narration, rng.random() < 0.3),
    }


def _scene(place: str, narration: str, new_picture: bool) -> dict:
    first = narration.split(".")[0].strip()
    return {
        "title": place[:1].upper() + place[1:],
        "summary": first[:200],
        "image_prompt": f"{place}; {first[:160]}",
        "new_picture": new_picture,
    }


def chunk_text(text: str, rng: random.Random) -> list[str]:
    """Split raw output into word-sized pieces, the way a model's tokens arrive."""
    words = re.findall(r"\S+\s*|\s+", text)
    chunks, i = [], 0
    while i < len(words):
        size = rng.choice([1, 1, 2, 3])
        chunks.append("".join(words[i : i + size]))
        i += size
    return chunks


# The scenarios (CHATGAME_MOCK_SCENARIO) are listed with the settings. Failures are raised with
# the same messages the live provider gives, so the page shows exactly what a player would see.
REFUSAL = (
    "I'm sorry, but I can't continue the story in that direction. Let's steer the tale "
    "somewhere else: the night is still young, and the road still waits."
)
UNICODE_LINES = [
    "A traveller greets you in three tongues: \u0645\u0631\u062d\u0628\u0627 "
    "(Arabic), \u05e9\u05dc\u05d5\u05dd (Hebrew), "
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 (Thai).",
    "The sign above the door reads \u00ab\u0110\u00e8n l\u1ed3ng\u00bb, and a lantern "
    "glows \U0001f3ee beside a tiny dragon \U0001f409.",
]


def scenario_turn(scenario: str, turn: dict) -> dict:
    """The turn as a scenario shapes it (text scenarios only)."""
    if scenario == "refusal":
        return {**turn, "narration": REFUSAL, "state": {}}
    if scenario == "very-long":
        body = turn["narration"]
        return {**turn, "narration": "\n\n".join([body] * 8)}
    if scenario == "unicode-mix":
        return {**turn, "narration": turn["narration"] + "\n\n" + " ".join(UNICODE_LINES)}
    return turn


def mock_summary(memory: str, turns: list[tuple[str, str]]) -> str:
    """The mock narrator's memory: the old one plus one line per folded turn.

    Each line keeps the player's action and the first sentence of the narrator's answer,
    which is what a summary of a turn mostly needs.
    """
    lines = [memory] if memory else []
    action = ""
    for role, text in turns:
        if role == "user":
            action = " ".join(text.split())
            continue
        first = re.split(r"(?<=[.!?])\s", " ".join(text.split()), maxsplit=1)[0]
        lines.append(f"- {action}: {first}" if action else f"- {first}")
        action = ""
    return "\n".join(lines)


def continuation(partial: str, full: str) -> str:
    """The rest of a cut-off mock reply: what the whole reply had after `partial`.

    The same turn composes the same text, so a stopped reply carries on word for word; when
    it does not match (another scenario, an edited game), a closing line is appended.
    """
    if full.startswith(partial) and len(full) > len(partial):
        return full[len(partial) :]
    return "\n\nThe moment passes, and the story waits for your next move."


class MockProvider:
    """A narrator that needs no model: deterministic, content-driven, streamed with a delay.

    `scenario` (one of `game.settings.SCENARIOS`) reproduces what backends do: a slow first
    token, a stall or a dropped connection mid-reply, a rate limit, an error written into the
    reply, a reply that ignores the format, a refusal, a very long or mixed-script reply.
    """

    name = "mock"
    live = False  # no backend: nothing to probe, no models to choose
    model = "mock"
    capabilities = None

    def __init__(self, delay_ms: int = 25, scenario: str = "normal", stall_s: float = 3.0) -> None:
        self.delay = delay_ms / 1000
        self.scenario = scenario
        self.stall_s = stall_s

    async def probe(self, chat_model: str, image_model: str) -> Capabilities:
        """What the mock can do: stream turns in the game's format and paint mock pictures."""
        return Capabilities(
            base_url="mock",
            models=[self.model],
            streaming=True,
            json_schema=True,
            images=True,
            operation_cancel=False,
            checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    async def close(self) -> None:
        """Nothing to let go of."""

    async def stream_turn(self, request: TurnRequest) -> AsyncIterator[str]:
        ctx = request.context
        scenario = ctx.mock_scenario or self.scenario
        if scenario == "rate-limited":
            body = {"error": {"message": "Rate limit reached", "code": "rate_limited"}}
            raise from_status(429, body, {"retry-after": "30"})
        turn = scenario_turn(scenario, compose_turn(ctx))
        if ctx.continue_from:
            turn = {**turn, "narration": continuation(ctx.continue_from, turn["narration"])}
        if scenario == "non-json":
            raw = turn["narration"]
        else:
            raw = json.dumps(turn, ensure_ascii=False, indent=1)
        rng = random.Random(f"chunks:{ctx.game_id}:{ctx.turn_number}")
        pieces = chunk_text(raw, rng)
        cut = len(pieces) // 3
        if scenario == "slow-start":
            await asyncio.sleep(self.stall_s)
        for index, piece in enumerate(pieces):
            if index == cut and scenario in ("stall", "drop-mid-stream", "in-band-error"):
                await self._fail_mid_reply(scenario)
            if self.delay:
                await asyncio.sleep(self.delay)
            else:
                await asyncio.sleep(0)  # still yield, so Stop and readers get a turn
            yield piece

    async def summarise(self, request: SummaryRequest) -> str:
        """A memory a model might write, made deterministically from the folded turns."""
        await asyncio.sleep(0)
        return mock_summary(request.memory, request.turns)

    async def _fail_mid_reply(self, scenario: str) -> None:
        if scenario == "stall":
            await asyncio.sleep(self.stall_s)
            raise from_exception(TimeoutError("read timeout"), self.stall_s, mid_reply=True)
        if scenario == "drop-mid-stream":
            raise from_exception(ConnectionResetError("peer closed"), 0, mid_reply=True)
        error = find_in_band_error("ChatGPT provider error (429): You've reached the usage cap")
        raise ProviderError(f"The narrator's backend reported an error: {error}")
