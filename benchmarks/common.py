"""Shared helpers for the benchmark scripts: tables, JSON, timing, data paths."""

import json
import os
import sys
import resource
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")  # not committed, except peers.json (MODEL_CARD.md)
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data")
# --quick: images per dataset (a seeded random subset). A quick run checks that a script
# runs end to end; its figures mean little, so it is kept small (the tests run it).
QUICK_LIMIT = 600


def median_time(fn, repeats=5, warmup=1):
    """Median wall time (s) of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_mb():
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    """Resident memory of this process now (MB), from /proc (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def table(rows, columns):
    """Print rows (dicts) as an aligned text table."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def write_json(name, payload, quick=False, results=None):
    """Write ``<results>/<name>.json`` (``<name>_quick.json`` for a quick run), atomically.

    ``results`` defaults to :data:`RESULTS`. The payload records ``quick`` either way, so a
    file says what kind of run made it.
    """
    payload = dict(payload, quick=bool(quick))
    results = RESULTS if results is None else results
    os.makedirs(results, exist_ok=True)
    path = os.path.join(results, f"{name}{'_quick' if quick else ''}.json")
    dump_json(path, payload)
    print(f"wrote {path}")
    return path


def dump_json(path, payload):
    """Write ``payload`` to ``path`` whole or not at all (a stopped run leaves no half file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, default=str)
    os.replace(tmp, path)


def machine():
    import platform

    from mtlfaces._hardware import cpu_model

    # The CPU's name: this project's 2-core machines are not all one kind (Sapphire Rapids
    # with AVX-512 and AMX; AMD EPYC without them, several times slower in places).
    return {"cpu_count": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}


def write_blocks(*blocks):
    """Write each generated block, given as (path, markers, text), between its markers
    (``recipes/model_card.write_block``): ``--write-docs`` in every benchmark."""
    recipes = os.path.join(ROOT, "recipes")
    if recipes not in sys.path:
        sys.path.insert(0, recipes)
    from model_card import write_block

    for path, markers, text in blocks:
        write_block(path, markers, text)


def publish(name, result, quick, write_docs, blocks=()):
    """Write ``result`` as JSON (:func:`write_json`) and, with ``write_docs`` on a full run,
    each generated block, given as (path, markers, render): ``render(result)`` goes between
    the markers of ``path``."""
    write_json(name, result, quick=quick)
    if write_docs and not quick:
        write_blocks(*[(path, markers, render(result)) for path, markers, render in blocks])
