"""Running curation's simulations in worker processes, with progress from every worker.

A :class:`Job` is one simulation pass: a chunk of candidate specs (each a lane), or the
baselines. Jobs run in a :class:`concurrent.futures.ProcessPoolExecutor` (``workers`` processes,
each given the shared :class:`~heteroscale.curate.evaluate.Setting` once, when it starts), or in
this process when ``workers`` is 1. Results come back in job order whatever finishes first, and a
lane's run does not depend on the other lanes of its pass, so the results do not depend on
``workers``. Workers report steps through a queue; :func:`run_jobs` turns them into calls of
``advance(job, share of the job done)``.
"""

from __future__ import annotations

import concurrent.futures
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from heteroscale.cores import worker_context
from heteroscale.curate import evaluate
from heteroscale.curate.evaluate import Setting
from heteroscale.curate.objective import Score

#: Steps between two progress messages from a worker.
REPORT_EVERY = 250

Advance = Callable[[int, float], None]


@dataclass(frozen=True)
class Job:
    """One simulation pass: candidate specs, or the baselines when ``documents`` is None."""

    documents: tuple[dict[str, Any], ...] | None

    @property
    def lanes(self) -> int:
        return len(self.documents) if self.documents is not None else 0


Result = list[Score] | dict[str, Score]


def chunks(documents: Sequence[dict[str, Any]], workers: int) -> list[Job]:
    """The documents in ``workers`` contiguous passes of near-equal size (fewer when there are fewer
    documents): a pass costs a fixed part plus a little per lane, so few large passes are fastest."""
    count = max(min(workers, len(documents)), 1)
    size, extra = divmod(len(documents), count)
    jobs, start = [], 0
    for k in range(count):
        end = start + size + (k < extra)
        jobs.append(Job(tuple(documents[start:end])))
        start = end
    return [job for job in jobs if job.lanes]


class _Reporter:
    """The simulator's Progress for one job, forwarding shares of its passes done."""

    def __init__(self, job: int, send: Callable[[tuple[int, float]], None]) -> None:
        self._job = job
        self._send = send
        self._total = 1
        self._done = 0
        self._pending = 0

    def start(self, label: str, total: int) -> None:
        self._total = max(total, 1)
        self._done = self._pending = 0

    def advance(self, steps: int) -> None:
        self._done += steps
        self._pending += steps
        if self._pending >= REPORT_EVERY or self._done >= self._total:
            self._send((self._job, self._pending / self._total))
            self._pending = 0


def _run(at: Setting, index: int, job: Job, send: Callable[[tuple[int, float]], None]) -> Result:
    reporter = _Reporter(index, send)
    if job.documents is None:
        return evaluate.baselines(at, reporter)
    return evaluate.score_specs(at, job.documents, reporter)


_WORKER: dict[str, Any] = {}


def _start_worker(at: Setting, messages: Any) -> None:
    _WORKER["setting"] = at
    _WORKER["messages"] = messages


def _work(index: int, job: Job) -> Result:
    return _run(_WORKER["setting"], index, job, _WORKER["messages"].put)


def run_jobs(at: Setting, jobs: Sequence[Job], workers: int, advance: Advance) -> list[Result]:
    """Every job's result, in job order (see the module docstring)."""
    if not jobs:
        return []
    if workers <= 1:
        return [_run(at, i, job, lambda message: advance(*message)) for i, job in enumerate(jobs)]
    context = worker_context()
    messages = context.Queue()
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context, initializer=_start_worker, initargs=(at, messages)
    ) as pool:
        futures = [pool.submit(_work, i, job) for i, job in enumerate(jobs)]
        pending = set(futures)
        while pending:
            _, pending = concurrent.futures.wait(pending, timeout=0.2)
            _drain(messages, advance)
        _drain(messages, advance)
        return [future.result() for future in futures]


def _drain(messages: Any, advance: Advance) -> None:
    while True:
        try:
            job, share = messages.get_nowait()
        except queue.Empty:
            return
        advance(job, share)
