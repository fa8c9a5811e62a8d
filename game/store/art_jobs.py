"""The scene-art queue's statements: claiming, settling, cancelling and recovering jobs.

Art workers are not player-scoped, so each function here is one unit of work in a session of
its own. Every change is a compare-and-set on the job's status (in recovery, on its owner too):
several workers, in this process or in `python -m game worker` processes, never run a job twice,
and a late picture never lands on a cancelled job (game/play/art.py runs the workers).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update

from game.store.db import Sessions
from game.store.instances import Instance, dead_owners
from game.store.models import ArtJob, Game, utcnow


async def claim_job(sessions: Sessions, owner: str) -> ArtJob | None:
    """Take the oldest queued job whose game has nothing running (FIFO per game) for `owner`.

    Each try commits on its own: a job another worker took first is skipped for the next.
    """
    async with sessions() as session:
        busy = select(ArtJob.game_id).where(ArtJob.status == "running")
        candidates = (
            await session.scalars(
                select(ArtJob)
                .where(ArtJob.status == "queued", ArtJob.game_id.not_in(busy))
                .order_by(ArtJob.created_at, ArtJob.id)
                .limit(5)
            )
        ).all()
        for job in candidates:
            result = await session.execute(
                update(ArtJob)
                .where(and_(ArtJob.id == job.id, ArtJob.status == "queued"))
                .values(
                    status="running",
                    attempts=ArtJob.attempts + 1,
                    owner=owner,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            if result.rowcount == 1:
                job.status = "running"
                return job
        return None


async def recover_jobs(
    sessions: Sessions,
    instance: Instance | None,
    skip: Container[str],
    max_attempts: int,
    gave_up: str,
) -> int:
    """Jobs left running by a process that is gone: queued again, or failed (with `gave_up`
    as their error) once tried `max_attempts` times; returns how many.

    Jobs in `skip` (running in this process) are left alone; without an `instance`, every
    owner counts as gone. Each change is a compare-and-set on the job's owner, all in one
    transaction.
    """
    async with sessions() as session:
        rows = (
            await session.execute(
                select(ArtJob.id, ArtJob.owner, ArtJob.attempts).where(ArtJob.status == "running")
            )
        ).all()
        if not rows:
            return 0
        owners = {row.owner for row in rows}
        dead = await dead_owners(instance, owners)
        recovered = 0
        for job_id, owner, attempts in rows:
            if owner not in dead or job_id in skip:
                continue
            values = (
                {"status": "failed", "error": gave_up}
                if attempts >= max_attempts
                else {"status": "queued"}
            )
            result = await session.execute(
                update(ArtJob)
                .where(ArtJob.id == job_id, ArtJob.status == "running", ArtJob.owner == owner)
                .values(**values, updated_at=utcnow())
            )
            recovered += result.rowcount
        await session.commit()
        return recovered


async def settle_job(sessions: Sessions, job_id: str, **values: str) -> None:
    """Store a result, but only while the job is still running (never over a cancel)."""
    await _change(sessions, job_id, ArtJob.status == "running", **values)


async def requeue_job(sessions: Sessions, job_id: str) -> None:
    """Put a running job back in the queue (its worker is stopping)."""
    await _change(sessions, job_id, ArtJob.status == "running", status="queued")


async def cancel_job(sessions: Sessions, job_id: str, reason: str) -> None:
    """Cancel a queued or running job, with `reason` as its error."""
    statuses = ("queued", "running")
    await _change(sessions, job_id, ArtJob.status.in_(statuses), status="cancelled", error=reason)


async def retry_job(sessions: Sessions, job_id: str) -> None:
    """Queue a failed or cancelled job again, its attempts counted afresh."""
    statuses = ("failed", "cancelled")
    await _change(
        sessions, job_id, ArtJob.status.in_(statuses), status="queued", error="", attempts=0
    )


async def job_scenario(sessions: Sessions, game_id: str) -> str:
    """The job's game's own mock scenario ("" when it has none, or the game is gone)."""
    async with sessions() as session:
        return await session.scalar(select(Game.mock_scenario).where(Game.id == game_id)) or ""


async def _change(
    sessions: Sessions, job_id: str, still: ColumnElement[bool], **values: Any
) -> None:
    """Change one job in a transaction of its own, only while `still` holds (compare-and-set)."""
    async with sessions() as session:
        await session.execute(
            update(ArtJob)
            .where(ArtJob.id == job_id, still)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
