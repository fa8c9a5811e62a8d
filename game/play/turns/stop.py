"""Ending turns early: Stop (here or in the process writing it) and turns a crash left open."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from game.play.fanout import TurnFanout
from game.play.live import TurnHub
from game.play.turns.finish import INTERRUPTED_NOTICE, STOPPED_NOTICE, Ending, TurnFinisher
from game.play.turns.plan import Planner, TurnPlan
from game.store.db import Sessions
from game.store.instances import Instance, dead_owners
from game.store.models import Message
from game.store.turn_rows import read_turn, reply_status, streaming_replies

STOP_WAIT_SECONDS = 5.0  # how long a Stop relayed to another process may take to land


@dataclass
class TurnStopper:
    """Stops running turns and settles the ones nobody writes any more."""

    sessions: Sessions
    hub: TurnHub
    planner: Planner
    finisher: TurnFinisher
    instance: Instance | None = None  # this process, as owner of the turns it writes
    fanout: TurnFanout | None = None  # several processes on PostgreSQL: the Stop relay

    async def stop(self, message: Message) -> None:
        """End generation now; the partial reply is kept and marked stopped."""
        if await self.stop_here(message.id) or not message.is_live:
            return
        if self.fanout is not None and await self._stop_elsewhere(message.id):
            return
        # Nobody writes it any more (its process crashed): settle the row directly.
        if await dead_owners(self.instance, {message.owner}):
            plan = await self._plan_from_database(message.id)
            if plan is not None:
                ending = Ending(message.raw, message.content, "stopped", STOPPED_NOTICE)
                await self.finisher.finish(plan, ending)

    async def stop_here(self, message_id: str) -> bool:
        """Stop the turn if this process writes it; True if it did."""
        live = self.hub.get(message_id)
        if live and live.task and not live.task.done():
            live.task.cancel()
            await asyncio.wait({live.task}, timeout=STOP_WAIT_SECONDS)
            return True
        return False

    async def _stop_elsewhere(self, message_id: str) -> bool:
        """Relay a Stop to the process writing the turn; True once its row has settled."""
        assert self.fanout is not None
        await self.fanout.request_stop(message_id)
        deadline = asyncio.get_running_loop().time() + STOP_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            if await reply_status(self.sessions, message_id) != "streaming":
                return True
        return False

    async def recover_interrupted(self) -> int:
        """Turns left streaming by a crashed process keep their text, marked interrupted.

        Runs at start-up and, where processes share the database, now and then: only turns
        whose owning process is gone are touched.
        """
        rows = await streaming_replies(self.sessions)
        if not rows:
            return 0
        owners = {row.owner for row in rows}
        dead = await dead_owners(self.instance, owners)
        recovered = 0
        for message_id, raw, content, owner in rows:
            if owner not in dead or self.hub.get(message_id) is not None:
                continue
            plan = await self._plan_from_database(message_id)
            if plan is not None:
                ending = Ending(raw, content, "interrupted", INTERRUPTED_NOTICE)
                await self.finisher.finish(plan, ending)
                recovered += 1
        return recovered

    async def _plan_from_database(self, message_id: str) -> TurnPlan | None:
        """What a turn built on, read back from the database (for turns without a live task)."""
        turn = await read_turn(self.sessions, message_id)
        if turn is None:
            return None
        action = turn.user.content if turn.user else ""
        plan = self.planner.plan(
            turn.game, turn.reply, anchor=turn.anchor, action=action, history=[]
        )
        plan.committed.set()
        return plan
