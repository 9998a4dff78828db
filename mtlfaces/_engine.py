"""One thread that owns dlib and the network, and classifies concurrent requests together.

The HTTP service (:mod:`mtlfaces.service`) hands each request's decoded image to
:meth:`Engine.submit`, which returns a :class:`concurrent.futures.Future` at once (or raises
:class:`QueueFull`). The engine thread takes the first waiting request, then gathers the
others that arrive within ``window_s`` (up to ``max_batch`` requests), finds the faces of
each (dlib, one call at a time: its models are not thread-safe), classifies all their faces
in one network call (micro-batching: under load, one call serves many requests), and
completes each request's future. The event loop never runs any of this.
"""

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .pipeline import FaceAnalyzer


class QueueFull(Exception):
    """The engine's queue is full: the caller should answer 503 and retry later."""


@dataclass
class Options:
    """Per-request settings, as ``mtlfaces predict`` has them."""

    crops: bool = False
    readout: object = "auto"  # "auto", True or False
    threshold: float = 0.2
    upsample: int = 0


@dataclass
class _Job:
    rgb: np.ndarray
    options: Options
    future: Future
    queued: float = field(default_factory=time.perf_counter)


class Engine:
    """Classify images submitted from any thread, with one worker thread.

    Parameters
    ----------
    analyzer : mtlfaces.Analyzer
        Holds the model and the read-out; its settings are the defaults of each request.
    max_queue : int, default=32
        Requests waiting at most; more raise :class:`QueueFull`.
    max_batch : int, default=16
        Requests classified together at most.
    window_s : float, default=0.005
        How long the engine waits for more requests after the first.
    """

    def __init__(self, analyzer, max_queue=32, max_batch=16, window_s=0.005):
        self.analyzer = analyzer
        self.max_batch = max_batch
        self.window_s = window_s
        self._queue = queue.Queue(maxsize=max_queue)
        self._thread = None
        self._stopping = threading.Event()
        self.stats = {"requests": 0, "network_calls": 0, "batched_requests": 0}

    # ------------------------------------------------------------- lifecycle
    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mtlfaces-engine",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout=30.0):
        """Finish the requests already queued, then stop the thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def waiting(self):
        return self._queue.qsize()

    def submit(self, rgb, options=None):
        """Queue one RGB uint8 image; a Future of ``(results, timings)``."""
        if self._stopping.is_set():
            raise QueueFull("the service is shutting down")
        future = Future()
        try:
            self._queue.put_nowait(_Job(rgb, options or Options(), future))
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are waiting") from None
        return future

    # ---------------------------------------------------------------- worker
    def _take(self):
        """The next batch of jobs (empty when stopping with nothing left)."""
        while True:
            try:
                first = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if self._stopping.is_set():
                    return []
        jobs = [first]
        deadline = time.perf_counter() + self.window_s
        while len(jobs) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                jobs.append(self._queue.get(timeout=max(left, 0)) if left > 0
                            else self._queue.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _run(self):
        while True:
            taken = self._take()
            if not taken:
                return
            # A request that timed out while queued was cancelled: skip it. Those taken now
            # can no longer be cancelled, so completing them cannot fail.
            jobs = [job for job in taken if job.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            try:
                self._process(jobs)
            except Exception as exc:  # a bug must fail its requests, not the engine
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _face_analyzer(self, options):
        base = self.analyzer.faces
        wanted = options.readout
        if wanted == "auto":
            readout = self.analyzer._readout_for("image")
        else:
            readout = self.analyzer._readout_for("image") if wanted else None
        return FaceAnalyzer(base.classifier, detector=base.detector,
                            upsample=options.upsample, threshold=options.threshold,
                            padding=base.padding, pose=base.pose, readout=readout,
                            max_side=base.max_side, crops=options.crops)

    def _process(self, jobs):
        start = time.perf_counter()
        found = []
        for job in jobs:
            t = time.perf_counter()
            try:
                analyzer = self._face_analyzer(job.options)
                faces = analyzer._find(job.rgb, still=True)
                finish = analyzer._classify_later(job.rgb, faces)  # read-out: here, now
            except Exception as exc:
                job.future.set_exception(exc)
                continue
            found.append((job, analyzer, faces, finish, time.perf_counter() - t))
        crops = [f.crop for _, _, faces, _, _ in found for f in faces]
        t = time.perf_counter()
        proba_all = self.analyzer.faces.classify(crops)
        network_s = time.perf_counter() - t
        if crops:
            self.stats["network_calls"] += 1
            self.stats["batched_requests"] += sum(1 for _, _, faces, _, _ in found if faces)
        offset = 0
        for job, analyzer, faces, finish, detect_s in found:
            n = len(faces)
            proba = {task: p[offset:offset + n] for task, p in proba_all.items()}
            offset += n
            results = analyzer.results(faces, finish(proba))
            timings = {"queued_ms": round((start - job.queued) * 1000, 2),
                       "detect_ms": round(detect_s * 1000, 2),
                       "classify_ms": round(network_s * 1000, 2),
                       "batch_requests": len(found)}
            self.stats["requests"] += 1
            job.future.set_result((results, timings))
