"""Colorize requests as jobs: queued in the model's bounded worker pool, watched, cancelled.

`JobBoard.submit` turns a photo's work into a `Job` that waits its turn in `ColorService`'s pool (first come,
first served, across users); its owner can ask where it stands (queue position, elapsed time, an estimate of the
time left) and cancel it. A queued job that is cancelled leaves the queue at once (its upload is dropped and the
user's place in `--max-queued-per-user` is freed); a running one cannot be stopped inside the model, so it
finishes its colouring but writes nothing: its work checks `Job.check` after the model and commits its history row
through `Job.commit`, which a cancel excludes, so a cancelled job never leaves an item in the history.

The estimate is the mean run time of the last `TYPICAL_WINDOW` jobs of the same model (of any model before
the first; none before any job ran), times the work ahead of the job spread over the pool's workers. Jobs live in
memory: a restart forgets them (their finished items are in the history); finished ones are kept `KEEP_FINISHED_S`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from colorjax.serve.storage import IMAGE_ID

JOB_ID = IMAGE_ID  # The same random 16-character ids.
KEEP_FINISHED_S = 3600.0  # How long a finished job can still be asked about.
TYPICAL_WINDOW = 10  # Jobs whose run times make the estimate.
FINISHED = ("done", "failed", "cancelled")

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job's work by `Job.check` when its owner cancelled it: nothing is written."""


@dataclasses.dataclass(eq=False)
class Job:
    """One photo's colouring. `status`: queued, running, done, failed or cancelled; `image_id` once done."""

    id: str
    user_id: int
    name: str  # The photo's display name.
    model: str  # The model it is coloured with.
    created: float
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    image_id: str | None = None
    error: str | None = None  # Why it failed, for its owner.
    error_status: int = 500  # The HTTP status the synchronous endpoint answers a failure with.
    cancel_requested: bool = False
    exception: BaseException | None = dataclasses.field(default=None, repr=False)
    result: Any = dataclasses.field(default=None, repr=False)  # Kept only for a synchronous caller.
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event, repr=False)
    task: asyncio.Task | None = dataclasses.field(default=None, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def check(self) -> None:
        """In the work, between steps: JobCancelled when the owner cancelled the job."""
        if self.cancel_requested:
            raise JobCancelled

    def commit(self, action: Callable[[], Any]) -> bool:
        """Runs `action` (the history row's insert) unless the job was cancelled, excluding a cancel meanwhile;
        False when it was cancelled (the work then removes what it wrote)."""
        with self._lock:
            if self.cancel_requested:
                return False
            action()
            return True

    def _finish(self, status: str, now: float | None = None) -> None:
        self.status, self.finished = status, now or time.time()


class JobBoard:
    """The jobs of every user, run in `run_in_pool` (`ColorService.run`, at most `concurrency` at once)."""

    def __init__(self, run_in_pool: Callable[..., Any], concurrency: int):
        self._run_in_pool = run_in_pool
        self.concurrency = concurrency
        self._jobs: dict[str, Job] = {}  # In submission order: the queue's order. Touched on the event loop.
        self._run_times: dict[str, collections.deque[float]] = collections.defaultdict(
            lambda: collections.deque(maxlen=TYPICAL_WINDOW)
        )

    def submit(
        self,
        user_id: int,
        name: str,
        model: str,
        work: Callable[[Job], Any],
        on_end: Callable[[], None] = lambda: None,
        keep_result: bool = False,
    ) -> Job:
        """Queues `work(job)` (it returns (ImageRecord, result)) and returns its job at once; `on_end` runs on
        the event loop when the job ends, however it ends. Call it on the event loop."""
        self._forget_finished()
        job = Job(id=secrets.token_urlsafe(12), user_id=user_id, name=name, model=model, created=time.time())
        self._jobs[job.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, work, on_end, keep_result))
        return job

    async def _run(self, job: Job, work: Callable[[Job], Any], on_end: Callable[[], None], keep: bool) -> None:
        try:
            await self._run_in_pool(self._work, job, work, keep)
        except asyncio.CancelledError:
            pass  # A queued job cancelled (`cancel`): it never reached a worker.
        finally:
            job.task = None
            job.done.set()
            on_end()

    def _work(self, job: Job, work: Callable[[Job], Any], keep: bool) -> None:
        """In a worker thread: the job's work, and its outcome recorded on the job."""
        with job._lock:
            if job.cancel_requested:
                return
            job.status, job.started = "running", time.time()
        try:
            record, result = work(job)
        except JobCancelled:
            job._finish("cancelled")
            return
        except Exception as error:  # Its owner hears why; the synchronous endpoint answers with it.
            # Only a synchronous caller gets the exception itself: its traceback holds the decoded photo.
            job.exception, job.error = error if keep else None, getattr(error, "message", None) or str(error)
            job.error_status = getattr(error, "status", 500)
            if job.error_status >= 500:
                log.exception("Job %s failed", job.id)
                job.error = "The server failed to colour this photo."
            job._finish("failed")
            return
        finished = time.time()
        self._run_times[job.model].append(finished - job.started)
        job.image_id, job.result = record.id, result if keep else None
        job._finish("done", finished)

    def get(self, job_id: str, user_id: int) -> Job | None:
        """The job if it exists AND belongs to `user_id` (another user's id looks exactly like a missing one)."""
        job = self._jobs.get(job_id) if JOB_ID.match(job_id) else None
        return job if job is not None and job.user_id == user_id else None

    def of_user(self, user_id: int) -> list[Job]:
        self._forget_finished()
        return [job for job in self._jobs.values() if job.user_id == user_id]

    def cancel(self, job: Job) -> None:
        """A queued job leaves the queue now; a running one is discarded when its colouring ends; a finished one
        stays as it is. Call it on the event loop."""
        with job._lock:
            if job.status in FINISHED or job.cancel_requested:
                return
            job.cancel_requested = True
            if job.status == "queued":
                job._finish("cancelled")
                if job.task is not None:
                    job.task.cancel()

    # Where a job stands ------------------------------------------------------------------------------------------

    def typical_s(self, model: str) -> float | None:
        """The mean run time of the model's last jobs (any model's before its first); None before any job ran."""
        times = self._run_times.get(model) or [t for ts in self._run_times.values() for t in ts]
        return statistics.fmean(times) if times else None

    def position(self, job: Job) -> int | None:
        """How many queued jobs (anyone's) are ahead of a queued job; None once it runs."""
        if job.status != "queued":
            return None
        ahead = 0
        for other in self._jobs.values():
            if other is job:
                return ahead
            ahead += other.status == "queued"
        return ahead

    def estimate_s(self, job: Job, now: float) -> float | None:
        """Seconds until the job is done, or None (finished, or no job has run yet)."""
        if job.status == "running":
            typical = self.typical_s(job.model)
            return None if typical is None else max(typical - (now - job.started), 0.0)
        if job.status != "queued":
            return None
        ahead = 0.0
        for other in self._jobs.values():
            if other is job:
                break
            if other.status in ("queued", "running"):
                remaining = self.estimate_s(other, now) if other.status == "running" else self.typical_s(other.model)
                if remaining is None:
                    return None
                ahead += remaining
        own = self.typical_s(job.model)
        return None if own is None else ahead / self.concurrency + own

    def describe(self, job: Job) -> dict[str, Any]:
        """What the API says about a job (GET /api/jobs/{id})."""
        now = time.time()
        status = "cancelling" if job.status == "running" and job.cancel_requested else job.status
        estimate = self.estimate_s(job, now)
        return {
            "id": job.id,
            "status": status,
            "name": job.name,
            "model": job.model,
            "position": self.position(job),
            "elapsed_s": round((job.finished or now) - job.created, 2),
            "running_s": None if job.started is None else round((job.finished or now) - job.started, 2),
            "estimate_s": None if estimate is None else round(estimate, 1),
            "image_id": job.image_id,
            "page": None if job.image_id is None else f"/images/{job.image_id}",
            "error": job.error,
        }

    def _forget_finished(self) -> None:
        cutoff = time.time() - KEEP_FINISHED_S
        for job_id in [i for i, j in self._jobs.items() if j.status in FINISHED and j.finished < cutoff]:
            del self._jobs[job_id]
