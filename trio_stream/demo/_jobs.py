"""Long-running jobs that report their progress on a topic of their own."""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass

import trio

from ..core import Hub, HubClosedError
from ..protocol import Event, TrioStreamError

__all__ = ["Job", "JobRunner", "JobStatistics", "JobsBusy", "job_topic"]

logger = logging.getLogger("trio_stream.demo")

MAX_JOB_STEPS = 100
"""The most progress events a job may be asked for."""

MAX_JOB_DURATION = 600.0
"""The longest a job may be asked to run, in seconds."""


def job_topic(job_id: str) -> str:
    """The topic a job's progress events are published on: ``jobs.<id>``."""
    return f"jobs.{job_id}"


class JobsBusy(TrioStreamError):
    """As many jobs as allowed are running already; the caller should try again later."""


@dataclass(frozen=True, slots=True)
class Job:
    """A started job: its ``id``, its ``topic`` and the id of its first event.

    A client subscribes to ``topic`` with ``last_event_id=first_event_id`` and
    gets every later event, however late it subscribes (within the topic's
    history): the first event (0 %) is published before the job is reported.
    """

    id: str
    topic: str
    first_event_id: str
    steps: int
    duration: float


@dataclass(frozen=True, slots=True)
class JobStatistics:
    """A snapshot of a :class:`JobRunner`: jobs ``running`` now (of ``capacity``), and
    totals ``started``, ``completed`` and ``cancelled`` (by a shutdown, or a broker
    failure while publishing progress)."""

    running: int
    capacity: int
    started: int
    completed: int
    cancelled: int


class JobRunner:
    """Runs the demo's jobs in a nursery of its own; each publishes its progress.

    Start it with ``await nursery.start(runner.run)``; :meth:`start` launches
    a job. A job of ``steps`` steps over ``duration`` seconds publishes
    ``progress`` events ``{"percent", "step", "steps", "state"}`` on
    ``jobs.<id>``: one at 0 % (``"queued"``) when it starts, one per step
    (``"running"``), and a last ``done`` event at 100 % (``"done"``).

    ``max_jobs`` (default 32) bounds the jobs running at once: each is a task
    and a topic with history, so an unbounded number would be unbounded
    memory. Cancelling :meth:`run` cancels the running jobs.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        max_jobs: int = 32,
        default_steps: int = 20,
        default_duration: float = 6.0,
    ) -> None:
        if max_jobs < 1:
            raise ValueError("max_jobs must be >= 1")
        self.hub = hub
        self.max_jobs = max_jobs
        self.default_steps, self.default_duration = check_job(default_steps, default_duration)
        self._nursery: trio.Nursery | None = None
        self._running = 0
        self._started = 0
        self._completed = 0
        self._cancelled = 0

    async def run(  # noqa: ASYNC114  startable; flake8-async's list is the project's config
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the jobs' tasks until cancelled (startable)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    @property
    def running(self) -> bool:
        """True while :meth:`run` runs (jobs can be started)."""
        return self._nursery is not None

    async def start(self, steps: int | None = None, duration: float | None = None) -> Job:
        """Start a job (defaults for what is None) and return it once its first event is out.

        Raises :class:`JobsBusy` when ``max_jobs`` are running, ``ValueError``
        for steps outside 1-100 or a duration outside (0, 600] seconds,
        ``RuntimeError`` if :meth:`run` is not running, and
        :class:`HubClosedError` if the Hub is closed.
        """
        steps, duration = check_job(
            self.default_steps if steps is None else steps,
            self.default_duration if duration is None else duration,
        )
        if not self.running:
            raise RuntimeError("JobRunner.run is not running")
        if self._running >= self.max_jobs:
            await trio.lowlevel.checkpoint()
            raise JobsBusy(f"{self.max_jobs} jobs are running already")
        job_id = secrets.token_hex(6)
        topic = job_topic(job_id)
        self._running += 1  # reserve the slot before the await: starts may run concurrently
        try:
            first = await self.hub.publish(topic, _progress(0, steps, "queued"))
        except BaseException:
            self._running -= 1
            raise
        assert first.id is not None
        job = Job(job_id, topic, first.id, steps, duration)
        nursery = self._nursery
        if nursery is None:  # run() ended while the first event was being published
            self._running -= 1
            raise RuntimeError("JobRunner.run is not running")
        self._started += 1
        nursery.start_soon(self._work, job, name=f"job {job_id}")
        logger.info("job %s started: %d steps over %gs", job_id, steps, duration)
        return job

    async def _work(self, job: Job) -> None:
        done = False
        await trio.lowlevel.checkpoint()
        try:
            deadline = trio.current_time()
            for step in range(1, job.steps + 1):
                deadline += job.duration / job.steps
                await trio.sleep_until(deadline)
                if step < job.steps:
                    await self.hub.publish(job.topic, _progress(step, job.steps, "running"))
                else:
                    await self.hub.publish(
                        job.topic, _progress(step, job.steps, "done", event="done")
                    )
            done = True
        except HubClosedError:
            logger.info("job %s abandoned: the hub closed", job.id)
        except TrioStreamError as exc:  # the broker is down: this job fails, not the runner
            logger.warning("job %s failed: publishing its progress failed: %s", job.id, exc)
        finally:
            self._running -= 1
            if done:
                self._completed += 1
            else:
                self._cancelled += 1

    def statistics(self) -> JobStatistics:
        """A :class:`JobStatistics` snapshot (no checkpoint)."""
        return JobStatistics(
            running=self._running,
            capacity=self.max_jobs,
            started=self._started,
            completed=self._completed,
            cancelled=self._cancelled,
        )


def check_job(steps: object, duration: object) -> tuple[int, float]:
    """Validate a job's ``steps`` (an int in 1-100) and ``duration`` (seconds in (0, 600]).

    Raises ``ValueError`` with a message safe to show a client.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_JOB_STEPS:
        raise ValueError(f"'steps' must be a whole number from 1 to {MAX_JOB_STEPS}")
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not (math.isfinite(duration) and 0 < duration <= MAX_JOB_DURATION)
    ):
        raise ValueError(f"'duration' must be a number of seconds in (0, {MAX_JOB_DURATION:g}]")
    return steps, float(duration)


def _progress(step: int, steps: int, state: str, *, event: str = "progress") -> Event:
    percent = round(100 * step / steps)
    return Event.json(
        {"percent": percent, "step": step, "steps": steps, "state": state}, event=event
    )
