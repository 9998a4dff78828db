"""Past one process: batch inference on a Dask cluster, written as Parquet partitions.

The work is :func:`mtlfaces.analyze`'s, spread over Dask workers (``dask.distributed``):

* :func:`analyze_to_parquet` runs a list of paths, a folder or a glob on a local cluster of
  worker processes (one per core by default) or on an existing one (``scheduler=``), and
  writes one Parquet file per partition of inputs plus ``manifest.json``. Running it again
  on the same folder resumes: finished partitions are skipped. ``mtlfaces predict SOURCE
  --parquet OUT [--workers N | --scheduler ADDRESS]`` is this function.
* :func:`analyze_column` maps a Dask DataFrame column of paths or image bytes to the
  records of their faces (``map_partitions``), lazily.
* :func:`read_results` reads a finished run back as one pandas DataFrame, in input order.
* :func:`local_cluster` starts a loopback cluster whose workers limit TensorFlow, OpenCV
  and the 8-bit interpreter to their share of the cores (:class:`ThreadLimit`), for
  inference and for ``GridSearchCV`` under ``joblib.parallel_backend("dask")``.

Every worker process loads the model, the read-out and dlib's models once, on its first
task, and keeps them (a per-process cache keyed by the model file's SHA-256 and the
options); a model other than the bundled one travels to each worker once, as a worker
plugin (:class:`ModelFiles`). The rows are those of ``mtlfaces predict --csv
--probabilities`` (status rows included: "ok", "no_face", "error"); a file that cannot be
read is an error row, never a failed job.

Workers must be able to read the inputs (the same paths: a shared file system on a real
cluster); the client writes the output, so the output folder needs to exist only where the
client runs.
"""

import hashlib
import json
import math
import os
import tempfile
import threading
import time

import numpy as np
from distributed import WorkerPlugin
from sklearn.base import BaseEstimator, ClassifierMixin

from ._defaults import DEFAULT_EVERY, DEFAULT_THRESHOLD, MAX_PIXELS

#: The manifest's name inside an output folder.
MANIFEST = "manifest.json"
#: The manifest's format tag; a folder with another one is not resumed.
FORMAT = "mtlfaces-parquet"
FORMAT_VERSION = 1
#: "auto" partitions hold about an eighth of a worker's share of the inputs, within these
#: bounds: small enough to balance the workers and to lose little to a crash, large enough
#: that the scheduler's few milliseconds a task are lost in the work.
MIN_PARTITION, MAX_PARTITION = 8, 256

_BLOBS = {}       # model key -> bytes of its model file (ModelFiles puts them on workers)
_MODELS = {}      # model key -> the loaded estimator, once per process
_ANALYZERS = {}   # (thread, model key, options) -> Analyzer
_LOCK = threading.Lock()
_STATS = {"model_loads": 0, "partitions": 0}


class DistributedError(RuntimeError):
    """A run that cannot start or finish (a busy output folder, a failed partition)."""


# ---------------------------------------------------------------------------- workers
class ThreadLimit(WorkerPlugin):
    """A Dask worker plugin: TensorFlow, OpenCV and the 8-bit interpreter use as many
    threads as the worker has (``nthreads``), not every core of the machine each.

    Registered by :func:`local_cluster`; on a cluster of your own,
    ``client.register_plugin(ThreadLimit())`` before the first task. TensorFlow's thread
    pools are fixed when it first runs an operation, so the plugin must come before any
    task that uses it.
    """

    name = "mtlfaces-thread-limit"

    def setup(self, worker):
        limit_threads(worker.state.nthreads)


def limit_threads(n):
    """Use ``n`` threads in TensorFlow's pools (if it is not imported yet: they are fixed
    then), OpenCV and the 8-bit interpreter; returns the number TensorFlow's intra-op
    pool has (0: TensorFlow's own choice, one per core)."""
    n = int(n)
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = str(n)
    import cv2

    cv2.setNumThreads(n)
    from . import _int8
    from ._native import quiet_tensorflow

    _int8.NUM_THREADS = n
    quiet_tensorflow(threads=n)
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()


class ModelFiles(WorkerPlugin):
    """A Dask worker plugin that puts a model file's bytes on every worker (those that join
    later too), so that tasks load it from memory instead of each task carrying it."""

    def __init__(self, key, blob):
        self.key, self.blob = key, blob
        self.name = f"mtlfaces-model-{key.split(':')[-1][:16]}"

    def setup(self, worker):
        _BLOBS[self.key] = self.blob


def worker_stats():
    """This process's cache: how many models it has loaded and partitions it has run (what
    ``client.run(worker_stats)`` reports per worker)."""
    return {"pid": os.getpid(), **_STATS}


def _model_for(key):
    """The estimator of ``key`` (None for the bundled one, which the Analyzer loads through
    the process's own cache), loaded once per process."""
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        blob = _BLOBS.get(key)
    if key == "bundled":
        from .pipeline import _bundled_model

        model = _bundled_model()
    elif blob is None:
        raise DistributedError(f"model {key} was not sent to this worker (register "
                               "mtlfaces.distributed.ModelFiles first)")
    else:
        from ._classifier import load_model

        with tempfile.TemporaryDirectory(prefix="mtlfaces-") as tmp:
            path = os.path.join(tmp, "model.mtlfaces")
            with open(path, "wb") as fh:
                fh.write(blob)
            model = load_model(path)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = model
            _STATS["model_loads"] += 1
        return _MODELS[key]


def _analyzer(key, options):
    """This thread's :class:`~mtlfaces.Analyzer` for the model ``key`` and ``options``; the
    model (and the read-out and dlib's models) load once per process."""
    from .pipeline import Analyzer

    cache_key = (threading.get_ident(), key, json.dumps(options, sort_keys=True))
    analyzer = _ANALYZERS.get(cache_key)
    if analyzer is None:
        model = _model_for(key)
        # The bundled model goes in as None, so that the Analyzer treats it as bundled
        # (its read-out "auto" is on for images); it is the process's cached one.
        analyzer = Analyzer(None if key == "bundled" else model, **options)
        with _LOCK:
            _ANALYZERS[cache_key] = analyzer
    return analyzer


def _records_of(analyzer, items):
    """The status-row records of ``items`` ((kind, value, name) tuples), input by input;
    anything that goes wrong with one input is that input's error row."""
    from .pipeline import Input, error_record

    records = []
    for kind, value, name in items:
        if kind == "error":
            records.append(error_record(name, value))
            continue
        if kind == "bytes":
            from .images import decode_bytes

            try:
                rgb = decode_bytes(value, name, analyzer.max_pixels)
                records.extend(analyzer.image(rgb, name).records(status_rows=True))
            except Exception as exc:  # noqa: BLE001 - one bad input is one error row
                records.append(error_record(name, _message(name, exc)))
            continue
        done = []
        try:
            for frame in analyzer.frames_of(Input(kind, value, name)):
                done.extend(frame.records(status_rows=True))
        except Exception as exc:  # noqa: BLE001 - one bad input is one error row
            done.append(error_record(name, _message(name, exc)))
        records.extend(done)
    return records


def _message(name, exc):
    text = str(exc)
    return text if name in text else f"{name}: {type(exc).__name__}: {text}"


def _run_partition(index, items, key, options, columns):
    """One partition on a worker: its rows as an Arrow table and its figures."""
    start = time.perf_counter()
    analyzer = _analyzer(key, options)
    records = _records_of(analyzer, items)
    table = _arrow_table(records, columns)
    statuses = [r.get("status") for r in records]
    _STATS["partitions"] += 1
    return {"index": index, "table": table, "rows": len(records),
            "faces": statuses.count("ok"), "no_face": statuses.count("no_face"),
            "errors": statuses.count("error"), "inputs": len(items),
            "seconds": round(time.perf_counter() - start, 3), "worker": os.getpid()}


# ---------------------------------------------------------------------------- schema
def columns_for(classes, probabilities=True):
    """The output's columns and Arrow types: ``FIELDS``, each other task's label and
    probability, then (with ``probabilities``) one ``TASK.CLASS`` column per class.

    ``classes`` maps task -> its class names (strings).
    """
    from .pipeline import FIELDS, output_columns

    ints = {"frame", "face", "track", "left", "top", "right", "bottom"}
    floats = {"time", "detector_score", "yaw", "pitch", "roll"}
    types = {}
    for name in FIELDS:
        types[name] = "int64" if name in ints else "float64" if name in floats or \
            name.endswith("_probability") else "string"
    for name, kind in output_columns(classes, probabilities):
        types[name] = "string" if kind == "label" else "float64"
    return list(types.items())


def _arrow_schema(columns):
    import pyarrow as pa

    kinds = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    return pa.schema([(name, kinds[kind]) for name, kind in columns])


def _arrow_table(records, columns):
    """``records`` (flattened) as an Arrow table of exactly ``columns``; labels as text, as
    the CSV has them."""
    import pyarrow as pa

    from .pipeline import flat_record

    schema = _arrow_schema(columns)
    text = {name for name, kind in columns if kind == "string"}
    rows = []
    for record in records:
        row = flat_record(record)
        rows.append({name: (str(row[name]) if name in text and row.get(name) is not None
                            else row.get(name)) for name, _ in columns})
    return pa.Table.from_pylist(rows, schema=schema)


# ---------------------------------------------------------------------------- inputs
def _expand_all(sources):
    """(kind, value, name) for every input of ``sources``: paths, folders and globs in
    order; a source that does not exist is one error item (an error row)."""
    from .pipeline import expand

    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    items = []
    for source in sources:
        try:
            found = expand(source)
        except ValueError as exc:
            items.append(("error", str(exc), os.fspath(source) if isinstance(
                source, (str, os.PathLike)) else repr(source)))
            continue
        for item in found:
            if item.kind not in ("image", "video"):
                raise ValueError(f"{item.name}: a distributed run takes files, folders and "
                                 f"globs, not a {item.kind}")
            items.append((item.kind, os.path.abspath(item.value), item.name))
    return items


def _partition_size(size, n_inputs, n_workers):
    if size == "auto":
        share = math.ceil(n_inputs / max(1, 8 * n_workers))
        return int(min(MAX_PARTITION, max(MIN_PARTITION, share)))
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"partition_size={size!r}; expected 'auto' or a positive integer")
    return size


def _model_key(model):
    """(key, blob, classes, name): the model's cache key, the bytes to send (None for the
    bundled model, which every installation has), task -> class names, a name to show."""
    from ._metadata import check_metadata
    from ._pretrained import PRETRAINED_MODEL_PATH
    from ._serialization import read_metadata

    if model is None:
        meta = check_metadata(read_metadata(PRETRAINED_MODEL_PATH), PRETRAINED_MODEL_PATH)
        from . import __version__

        return ("bundled", None, dict(zip(meta["tasks"], [[str(c) for c in cs] for cs in
                                                          meta["classes"]])),
                f"bundled ({__version__})")
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        meta = check_metadata(read_metadata(path), path)  # names a bad file here, not later
        with open(path, "rb") as fh:
            blob = fh.read()
        classes = dict(zip(meta["tasks"], [[str(c) for c in cs] for cs in meta["classes"]]))
        name = path
    elif hasattr(model, "tasks_") and hasattr(model, "save"):
        from .tasks import classes_by_task

        with tempfile.TemporaryDirectory(prefix="mtlfaces-") as tmp:
            path = os.path.join(tmp, "model.mtlfaces")
            model.save(path)
            with open(path, "rb") as fh:
                blob = fh.read()
        classes = {t: [str(c) for c in cs] for t, cs in classes_by_task(model).items()}
        name = type(model).__name__
    else:
        raise ValueError(f"model={type(model).__name__}: expected a fitted "
                         "MultiTaskFaceClassifier, a model file or None (the bundled model)")
    return "sha256:" + hashlib.sha256(blob).hexdigest(), blob, classes, name


def _analyzer_defaults():
    """The :class:`~mtlfaces.Analyzer`'s keyword options and their defaults."""
    import inspect

    from .pipeline import Analyzer

    return {name: p.default for name, p in inspect.signature(Analyzer).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _options(readout, detector, upsample, threshold, padding, pose, every, smooth,
             max_frames, max_side, max_pixels, crops):
    options = dict(readout=readout, detector=detector, upsample=upsample,
                   threshold=float(threshold), padding=float(padding), pose=pose, every=every,
                   smooth=float(smooth), max_frames=max_frames, max_side=max_side,
                   max_pixels=max_pixels, crops=crops)
    if readout not in ("auto", True, False):
        raise ValueError(f"readout={readout!r}; a distributed run takes 'auto', True or "
                         "False (the bundled read-out)")
    return options


# ---------------------------------------------------------------------------- clusters
def local_cluster(n_workers=None, threads_per_worker=1, **kwargs):
    """A :class:`distributed.Client` on a new loopback cluster of worker processes.

    Each worker limits TensorFlow, OpenCV and the 8-bit interpreter to its
    ``threads_per_worker`` (:class:`ThreadLimit`). Close the client (or use it in a
    ``with`` block) to stop the cluster.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; default one per core.
    threads_per_worker : int, default=1
    **kwargs
        Passed to :class:`distributed.LocalCluster` (e.g. ``memory_limit``).
    """
    from distributed import Client

    n_workers = n_workers or os.cpu_count() or 1
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers={n_workers!r}; expected a positive integer")
    env = {var: str(threads_per_worker) for var in
           ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")
    options = dict(n_workers=n_workers, threads_per_worker=threads_per_worker,
                   processes=True, host="127.0.0.1", dashboard_address=_dashboard(),
                   env=env)
    options.update(kwargs)
    client = Client(**options)  # a client that makes its cluster closes it with itself
    client.register_plugin(ThreadLimit())
    return client


def _dashboard():
    """Port 0 (any free one) when Bokeh is installed, which the dashboard needs; else none."""
    import importlib.util

    return ":0" if importlib.util.find_spec("bokeh") is not None else None


# ---------------------------------------------------------------------------- runs
def _partition_file(index):
    return f"part-{index:05d}.parquet"


def _write_json(path, data):
    tmp = path + ".partial"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def _write_table(path, table, figures):
    """Write ``table`` to ``path`` atomically (a ``.partial`` name, then renamed), with the
    partition's figures in the file's key-value metadata."""
    import pyarrow.parquet as pq

    meta = dict(table.schema.metadata or {})
    meta[b"mtlfaces"] = json.dumps(figures).encode()
    tmp = path + ".partial"
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    os.replace(tmp, path)


def _figures_of(path):
    """The figures a finished partition file holds, or None if it is not a readable one."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path).metadata or {}
        return json.loads(meta[b"mtlfaces"])
    except (OSError, KeyError, ValueError):
        return None


def _fingerprint(items):
    digest = hashlib.sha256()
    for kind, _, name in items:
        digest.update(f"{kind}\0{name}\n".encode())
    return digest.hexdigest()


def _start_manifest(out, plan, size, key, model_name, options, columns, overwrite):
    """The manifest of ``out``: a new one, or the unfinished run's (resumed) when it has
    the same inputs, model and options; anything else is refused unless ``overwrite``."""
    from . import __version__

    path = os.path.join(out, MANIFEST)
    wanted = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": key,
              "options": options, "columns": [c for c, _ in columns],
              "inputs_sha256": _fingerprint(plan)}
    if os.path.exists(path) and not overwrite:
        try:
            with open(path) as fh:
                old = json.load(fh)
        except (OSError, ValueError) as exc:
            raise DistributedError(f"{path}: not a readable manifest ({exc}); choose another "
                                   "output folder, or overwrite=True (--overwrite)") from None
        differs = [k for k in wanted if old.get(k) != wanted[k]]
        if differs:
            what = {"inputs_sha256": "inputs", "columns": "columns"}
            raise DistributedError(
                f"{out} holds a run with other {', '.join(what.get(k, k) for k in differs)}; "
                "choose another output folder, or overwrite=True (--overwrite) to replace it")
        return old, old["partition_size"]
    if os.path.isdir(out) and os.listdir(out):
        if not overwrite:
            raise DistributedError(f"{out}: the folder is not empty and holds no mtlfaces "
                                   "run; choose an empty or new folder")
        for name in os.listdir(out):
            if name == MANIFEST or name.startswith("part-"):
                os.remove(os.path.join(out, name))
            else:
                raise DistributedError(f"{out}: holds {name}, which is not part of a run; "
                                       "--overwrite only replaces a run's own files")
    os.makedirs(out, exist_ok=True)
    manifest = {**wanted, "mtlfaces": __version__, "model_name": model_name,
                "partition_size": size, "inputs": len(plan), "complete": False,
                "partitions": []}
    _write_json(path, manifest)
    return manifest, size


def analyze_to_parquet(sources, out, model=None, *, client=None, scheduler=None,
                       workers=None, partition_size="auto", overwrite=False, progress=False,
                       readout="auto", detector="auto", upsample=0,
                       threshold=DEFAULT_THRESHOLD, padding=0.1, pose=True,
                       every=DEFAULT_EVERY, smooth=0.7, max_frames=None, max_side=None,
                       max_pixels=MAX_PIXELS, crops=False):
    """Analyse many files on a Dask cluster into Parquet partitions and a manifest.

    Parameters
    ----------
    sources : str, path, or a list of them
        Image and video files, folders (their images and videos, recursively, sorted) and
        globs (``photos/**/*.jpg``). A source that does not exist is an error row.
    out : str or path
        Output folder: ``part-NNNNN.parquet`` per partition and ``manifest.json``. If it
        holds an unfinished run of the same inputs, model and options, that run resumes
        (finished partitions are kept); a finished one is returned as it is.
    model : MultiTaskFaceClassifier, str or None, default=None
        A fitted estimator, a model file, or None for the bundled model. Another model is
        sent to every worker once.
    client : distributed.Client, optional
        Run on this client's cluster.
    scheduler : str, optional
        Connect to the scheduler at this address (``tcp://host:8786``) instead.
    workers : int, optional
        Otherwise a local cluster of this many processes is started, and closed at the end
        (default: one per core).
    partition_size : "auto" or int, default="auto"
        Inputs per partition (and per Parquet file); "auto": about an eighth of a worker's
        share, from 8 to 256. A resumed run keeps its own.
    overwrite : bool, default=False
        Replace a run of other inputs or options in ``out`` instead of refusing.
    progress : bool, default=False
        Show Dask's progress bar (and the dashboard's address when there is one).
    readout, detector, upsample, threshold, padding, pose, every, smooth, max_frames, \
max_side, max_pixels, crops
        As in :func:`mtlfaces.analyze`.

    Returns
    -------
    dict
        The manifest: ``complete``, ``inputs``, ``partitions`` (per partition its file,
        inputs, rows, faces, ``no_face`` and ``errors`` counts, seconds and worker), and the
        run's ``model``, ``options`` and ``columns``.

    Raises
    ------
    DistributedError
        ``out`` holds another run or other files; a partition failed (the others are kept:
        run again to resume).
    """
    options = _options(readout, detector, upsample, threshold, padding, pose, every, smooth,
                       max_frames, max_side, max_pixels, crops)
    from .pipeline import Analyzer

    Analyzer.check_options(**options)
    out = os.fspath(out)
    plan = _expand_all(sources)
    if not plan:
        raise ValueError("no inputs: the sources hold no images or videos")
    key, blob, classes, model_name = _model_key(model)
    columns = columns_for(classes)
    if client is not None and (scheduler is not None or workers is not None):
        raise ValueError("give client=, or scheduler= / workers=, not both")
    if scheduler is not None and workers is not None:
        raise ValueError("workers= starts a local cluster; scheduler= uses an existing one: "
                         "give one of them")
    owned = False
    if scheduler is not None:
        client, owned = _connect(scheduler), True
    try:
        if client is not None:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        else:
            n_workers = workers or os.cpu_count() or 1
        size = _partition_size(partition_size, len(plan), n_workers)
        manifest, size = _start_manifest(out, plan, size, key, model_name, options, columns,
                                         overwrite)
        parts = [plan[i:i + size] for i in range(0, len(plan), size)]
        done = {}
        for index, part in enumerate(parts):
            figures = _figures_of(os.path.join(out, _partition_file(index)))
            if figures is not None and figures.get("inputs") == len(part):
                done[index] = {**figures, "resumed": True}
        if len(done) == len(parts):  # nothing left: no cluster needed
            manifest = _with_partitions(manifest, parts, done, {})
            _write_json(os.path.join(out, MANIFEST), manifest)
            return manifest
        if client is None:
            client, owned = local_cluster(workers), True
        return _run(client, out, parts, done, key, blob, options, columns, manifest,
                    progress)
    finally:
        if owned:
            client.close()


def _connect(scheduler):
    from distributed import Client

    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise DistributedError(f"scheduler {scheduler}: cannot connect ({exc})") from None
    client.register_plugin(ThreadLimit())
    return client


def _run(client, out, parts, figures, key, blob, options, columns, manifest, progress):
    from distributed import as_completed

    figures = dict(figures)
    if blob is not None:
        client.register_plugin(ModelFiles(key, blob))
    todo = [i for i in range(len(parts)) if i not in figures]
    futures = [client.submit(_run_partition, i, parts[i], key, options, columns,
                             key=f"mtlfaces-partition-{i}-{manifest['inputs_sha256'][:12]}")
               for i in todo]
    index_of = {f.key: i for f, i in zip(futures, todo)}
    bar = None
    if progress and futures:
        if client.dashboard_link and _dashboard():
            print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        from distributed import progress as dask_progress

        bar = threading.Thread(target=dask_progress, args=(futures,), daemon=True)
        bar.start()
    failed, last_write = {}, time.monotonic()
    path = os.path.join(out, MANIFEST)
    try:
        for future in as_completed(futures):
            if future.status == "error":
                index = index_of[future.key]
                failed[index] = f"{type(future.exception()).__name__}: {future.exception()}"
                continue
            result = future.result()
            index = result.pop("index")
            table = result.pop("table")
            _write_table(os.path.join(out, _partition_file(index)), table, result)
            figures[index] = result
            future.release()
            if time.monotonic() - last_write > 2:  # a progress record, not the truth
                _write_json(path, _with_partitions(manifest, parts, figures, failed))
                last_write = time.monotonic()
    finally:
        if bar is not None:
            bar.join(timeout=5)
        for future in futures:
            future.cancel()
        manifest = _with_partitions(manifest, parts, figures, failed)
        _write_json(path, manifest)
    if failed:
        first = min(failed)
        raise DistributedError(f"{len(failed)} of {len(parts)} partitions failed (partition "
                               f"{first}: {failed[first]}); the others are in {out}: run "
                               "again to resume")
    return manifest


def _with_partitions(manifest, parts, figures, failed):
    rows = []
    for index, part in enumerate(parts):
        row = {"file": _partition_file(index), "first_input": part[0][2],
               "inputs": len(part), "done": index in figures}
        if index in figures:
            row.update({k: v for k, v in figures[index].items() if k != "inputs"})
        if index in failed:
            row["failed"] = failed[index]
        rows.append(row)
    done = [figures[i] for i in figures]
    return {**manifest, "partitions": rows, "complete": len(figures) == len(parts),
            "rows": sum(f["rows"] for f in done), "faces": sum(f["faces"] for f in done),
            "no_face": sum(f["no_face"] for f in done),
            "errors": sum(f["errors"] for f in done)}


def read_manifest(out):
    """The manifest of the run in ``out``; raises FileNotFoundError naming the folder."""
    path = os.path.join(os.fspath(out), MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{out}: no {MANIFEST}; not the output of a distributed run")
    with open(path) as fh:
        return json.load(fh)


def read_results(out, allow_incomplete=False):
    """The rows of the run in ``out`` as one pandas DataFrame, in input order.

    Parameters
    ----------
    out : str or path
    allow_incomplete : bool, default=False
        Read the finished partitions of an unfinished run instead of raising.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    manifest = read_manifest(out)
    if not manifest.get("complete") and not allow_incomplete:
        done = sum(p.get("done", False) for p in manifest.get("partitions", []))
        raise DistributedError(f"{out}: the run is unfinished ({done} of "
                               f"{len(manifest.get('partitions', []))} partitions); run it "
                               "again to resume, or allow_incomplete=True")
    files = sorted(f for f in os.listdir(out) if f.startswith("part-") and f.endswith(".parquet"))
    tables = [pq.read_table(os.path.join(out, f)) for f in files]
    if not tables:
        return pd.DataFrame(columns=manifest["columns"])
    import pyarrow as pa

    return pa.concat_tables(tables).replace_schema_metadata(None).to_pandas()


def error_rows(out, limit=None):
    """(source, message) of the error rows of the run in ``out``, in input order, reading
    only those rows' two columns (the first ``limit`` of them)."""
    import pyarrow.parquet as pq

    found = []
    files = sorted(f for f in os.listdir(out) if f.startswith("part-") and f.endswith(".parquet"))
    for name in files:
        table = pq.read_table(os.path.join(out, name), columns=["source", "error"],
                              filters=[("status", "==", "error")])
        found.extend(zip(table.column("source").to_pylist(), table.column("error").to_pylist()))
        if limit is not None and len(found) >= limit:
            return found[:limit]
    return found


# ---------------------------------------------------------------------------- dataframes
def analyze_column(column, model=None, **options):
    """The records of every face of a Dask (or pandas) Series of paths or image bytes.

    Each partition is analysed where it lies (``map_partitions``), on each worker's cached
    model; the result is lazy: a Dask DataFrame indexed by the input rows' index (one row
    per face, or one status row), with :func:`columns_for`'s columns.

    Parameters
    ----------
    column : dask.dataframe.Series or pandas.Series
        File paths (str) or the bytes of image files; a row that is neither, or that
        cannot be read, is an error row. Dask turns object columns into Arrow strings
        when it makes a DataFrame, which bytes are not: build a column of bytes under
        ``dask.config.set({"dataframe.convert-string": False})``.
    model : MultiTaskFaceClassifier, str or None, default=None
        As in :func:`analyze_to_parquet`. With a distributed client, a model other than
        the bundled one is sent to its workers once.
    **options
        As in :func:`mtlfaces.analyze` (readout, detector, upsample, threshold, ...).
    """
    import pandas as pd

    defaults = _analyzer_defaults()
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"analyze_column() got unknown option(s) {unknown}; expected some "
                        f"of {sorted(defaults)}")
    options = _options(**{**defaults, **options})
    from .pipeline import Analyzer

    Analyzer.check_options(**options)
    key, blob, classes, _ = _model_key(model)
    columns = columns_for(classes)
    if blob is not None:
        _BLOBS[key] = blob  # this process (the threaded and synchronous schedulers)
        try:
            from distributed import default_client

            default_client().register_plugin(ModelFiles(key, blob))
        except (ImportError, ValueError):
            pass  # no distributed client: the workers are this process's threads
    meta = _arrow_schema(columns).empty_table().to_pandas()
    meta.index = pd.Index([], dtype=column.index.dtype, name=column.index.name)
    if isinstance(column, pd.Series):
        return _analyze_series(column, key, options, columns)
    return column.map_partitions(_analyze_series, key, options, columns, meta=meta,
                                 align_dataframes=False)


def _analyze_series(series, key, options, columns):
    import pandas as pd

    analyzer = _analyzer(key, options)
    tables, index = [], []
    for label, value in series.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            items = [("bytes", bytes(value), f"bytes[{label}]")]
        elif isinstance(value, (str, os.PathLike)):
            items = _expand_all([value])
        else:
            items = [("error", f"row {label!r}: expected a path or the bytes of an image, "
                               f"not {type(value).__name__}", f"row {label}")]
        records = _records_of(analyzer, items)
        tables.append(records)
        index.extend([label] * len(records))
    frame = _arrow_table([r for rs in tables for r in rs], columns).to_pandas()
    frame.index = pd.Index(index, dtype=series.index.dtype, name=series.index.name)
    return frame


# ---------------------------------------------------------------------------- arrays
class SingleTask(ClassifierMixin, BaseEstimator):
    """One task of a multi-task estimator as a plain single-output classifier.

    Tools written for single-output estimators, such as
    :class:`dask_ml.wrappers.ParallelPostFit` (which expects ``predict`` to give one label
    per row), take the multi-task :class:`~mtlfaces.MultiTaskFaceClassifier` through this:
    ``predict`` gives the task's labels (n,), ``predict_proba`` its probabilities
    (n, n_classes) and ``classes_`` its classes. Each task asked for runs the network
    once.

    Parameters
    ----------
    estimator : MultiTaskFaceClassifier
        A fitted estimator (or one that :meth:`fit` fits).
    task : str
        One of its ``tasks_``.

    Examples
    --------
    >>> import dask.array as da, mtlfaces
    >>> from dask_ml.wrappers import ParallelPostFit
    >>> crops = da.from_array(flat_crops, chunks=(1000, 48 * 48))  # doctest: +SKIP
    >>> emotion = ParallelPostFit(SingleTask(mtlfaces.load_pretrained(), "emotion"))
    >>> emotion.predict(crops).compute()  # doctest: +SKIP
    """

    def __init__(self, estimator=None, task=None):
        self.estimator = estimator
        self.task = task

    def fit(self, X, y, **fit_params):
        """Fit the estimator on all its tasks (y as for it); this then serves ``task``."""
        self.estimator.fit(X, y, **fit_params)
        return self

    def _column(self):
        from .tasks import classes_by_task

        if not hasattr(self.estimator, "tasks_"):
            raise ValueError("SingleTask: the estimator is not fitted; fit it first")
        classes = classes_by_task(self.estimator)
        if self.task not in classes:
            raise ValueError(f"SingleTask: task={self.task!r} is not one of the estimator's "
                             f"tasks {list(classes)}")
        return list(classes).index(self.task), classes[self.task]

    @property
    def classes_(self):
        return np.asarray(self._column()[1])

    def predict_proba(self, X):
        """The task's class probabilities, shape (n, n_classes)."""
        index, _ = self._column()
        proba = self.estimator.predict_proba(X)
        return proba[index] if isinstance(proba, list) else proba

    def predict(self, X):
        """The task's most probable label per row, shape (n,)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


__all__ = ["analyze_to_parquet", "analyze_column", "read_results", "read_manifest", "error_rows",
           "local_cluster", "limit_threads", "worker_stats", "columns_for", "ThreadLimit",
           "ModelFiles", "SingleTask", "DistributedError", "MANIFEST"]
