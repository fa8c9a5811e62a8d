"""Scene art jobs: queued as rows, claimed by workers, painted, stored by content hash.

Claiming is a compare-and-set UPDATE (queued -> running), so several workers, in this process
or in `python -m game worker` processes, never run a job twice. A result is only stored while
the job is still `running`: a late picture never overwrites a cancelled job. The statements
are in game/store/art_jobs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from game.ai.painters import Painter, PaintError
from game.store.art_jobs import (
    cancel_job,
    claim_job,
    job_scenario,
    recover_jobs,
    requeue_job,
    retry_job,
    settle_job,
)
from game.store.db import Sessions
from game.store.instances import Instance
from game.store.models import ArtJob, Game, new_id
from game.store.private_files import private_dir, write_private
from game.world.catalog import World

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
GAVE_UP = "The painter stopped too many times; retry it."
UI_WORDS = "no text, no letters, no captions, no user interface, no HUD, no watermark, no border"


def art_prompt(scene: dict[str, Any], world: World) -> str:
    """The picture request: the scene in the world's art direction, without UI artefacts."""
    what = str(scene.get("image_prompt") or scene.get("summary") or scene.get("title") or "")
    what = " ".join(what.split())[:600]
    return f"{what}. Style: {world.art_direction} Wide establishing shot; {UI_WORDS}."


MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)\s*\)")


def markdown_images(text: str) -> list[str]:
    """Links of markdown images in a reply (chat2api delivers pictures this way)."""
    return MARKDOWN_IMAGE.findall(text)


def strip_markdown_images(text: str) -> str:
    return MARKDOWN_IMAGE.sub("", text).strip()


def new_job(
    game: Game,
    scene: dict[str, Any],
    world: World,
    message_id: str | None,
    source_url: str = "",
) -> ArtJob:
    """A queued job for the scene (the caller adds it to its transaction)."""
    return ArtJob(
        id=new_id(),
        game_id=game.id,
        message_id=message_id,
        status="queued",
        title=str(scene.get("title") or "")[:200],
        prompt=art_prompt(scene, world),
        attempts=0,
        error="",
        operation_id="",
        image="",
        source_url=source_url,
    )


def wants_picture(image_mode: str, scene: dict[str, Any] | None) -> bool:
    """Whether a finished turn's scene should be painted under the game's image mode."""
    if image_mode == "force":
        return bool(scene)
    return image_mode == "suggest" and bool(scene and scene.get("new_picture"))


class ArtService:
    """Runs the workers of this process and the job actions the pages offer."""

    def __init__(
        self,
        sessions: Sessions,
        painter: Painter,
        image_dir: Path,
        concurrency: int = 1,
        instance: Instance | None = None,
    ) -> None:
        self.sessions = sessions
        self.instance = instance  # owner of the jobs this process claims
        self.painter = painter
        self.image_dir = image_dir
        self.concurrency = concurrency
        self.disabled_reason = ""  # set when the backend turns out to have no images
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task] = []
        self._running: dict[str, asyncio.Task] = {}

    # ---- lifecycle ----------------------------------------------------------------------------

    async def recover(self) -> int:
        """Jobs left running by a crashed process are queued again, or failed after 3 tries.

        Runs at start-up and, where processes share the database, now and then: only jobs
        whose owning process is gone are touched, each by a compare-and-set on its owner.
        """
        return await recover_jobs(
            self.sessions, self.instance, self._running, MAX_ATTEMPTS, GAVE_UP
        )

    def start(self) -> None:
        private_dir(self.image_dir)
        self._workers = [
            asyncio.create_task(self._work(), name=f"art-worker-{n}")
            for n in range(self.concurrency)
        ]

    async def stop(self) -> None:
        """Stop the workers; a job they were running goes back to the queue."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def wake(self) -> None:
        """Tell idle workers that a job was queued."""
        self._wake.set()

    # ---- workers ------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self.claim()
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=2.0)
                continue
            task = asyncio.create_task(self._run(job), name=f"art-{job.id}")
            self._running[job.id] = task
            try:
                await task
            except Exception:  # never lose a worker: the job is settled as failed
                log.exception("art job %s crashed", job.id)
                await settle_job(
                    self.sessions, job.id, status="failed", error="The painter crashed."
                )
            except asyncio.CancelledError:
                worker = asyncio.current_task()
                if worker is not None and worker.cancelling():  # shutting down: queue it again
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    await asyncio.shield(requeue_job(self.sessions, job.id))
                    raise
                # only the job was cancelled (Cancel button): carry on with the next one
            finally:
                self._running.pop(job.id, None)

    async def claim(self) -> ArtJob | None:
        """Take the oldest queued job whose game has nothing running (FIFO per game)."""
        return await claim_job(self.sessions, self.instance.id if self.instance is not None else "")

    async def _run(self, job: ArtJob) -> None:
        try:
            if job.source_url:
                data, extension = await self.painter.fetch_picture(job.source_url)
            else:
                data, extension = await self.painter.paint(
                    job.prompt, job.id, await job_scenario(self.sessions, job.game_id)
                )
        except PaintError as exc:
            if exc.unsupported and not job.source_url:
                self.disabled_reason = str(exc)
            await settle_job(self.sessions, job.id, status="failed", error=str(exc))
            return
        except Exception as exc:  # a bug must not leave the job running
            log.exception("art job %s failed", job.id)
            await settle_job(
                self.sessions, job.id, status="failed", error=f"The painter failed: {exc}"
            )
            return
        name = f"{hashlib.sha256(data).hexdigest()}.{extension}"
        try:
            await asyncio.to_thread(self._store, name, data, job.id)
        except OSError as exc:
            await settle_job(
                self.sessions, job.id, status="failed", error=f"Could not save the picture: {exc}"
            )
            return
        await settle_job(self.sessions, job.id, status="done", image=name)

    def _store(self, name: str, data: bytes, job_id: str) -> None:
        """Write the file under its content hash; same pictures share one file."""
        path = self.image_dir / name
        if path.exists():
            return
        tmp = self.image_dir / f".{job_id}.part"  # unique per job: concurrent equal pictures
        write_private(tmp, data)
        tmp.replace(path)

    # ---- actions --------------------------------------------------------------------------

    async def cancel(self, job: ArtJob) -> None:
        """Cancel a queued or running job; a running painter in this process is stopped."""
        await cancel_job(self.sessions, job.id, "Cancelled.")
        task = self._running.get(job.id)
        if task is not None:
            task.cancel()

    async def remove_files(self, names: set[str]) -> None:
        """Delete picture files no job uses any more (off the event loop: there may be many)."""

        def unlink() -> None:
            for name in names:
                (self.image_dir / Path(name).name).unlink(missing_ok=True)

        if names:
            await asyncio.to_thread(unlink)

    async def retry(self, job: ArtJob) -> None:
        """Queue a failed or cancelled job again."""
        await retry_job(self.sessions, job.id)
        self.wake()
