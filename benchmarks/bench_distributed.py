"""Batch inference past one process: the same photos on Dask clusters of 1 and 2 workers.

    python benchmarks/bench_distributed.py [--quick] [--photos 1000] [--data ../shared/data]
                                           [--write-docs]

The photos: the first 1,000 LFW photos of ``lfw-gender.zip`` (350×350 grayscale JPEG, one
face centred), unpacked to a temporary folder (``--quick``: 40 copies of scikit-image's
astronaut at several sizes, no data needed). Each is run with the read-out off and on: once by one
process (``Analyzer.analyze``, what ``mtlfaces predict`` does), then by
``mtlfaces.distributed.analyze_to_parquet`` on a local cluster of 1 and of 2 worker
processes (one thread each), started and warmed up before the clock starts; with the
read-out off, also by 1 and 2 separate processes without Dask (the machine's own ceiling
for two processes). Each time is the best of two runs. Per run:
images/s, faces/s, the speed-up of 2 workers over 1, peak memory per worker. Also measured:
the time a worker takes to load the model (its first task), the scheduler's overhead per
task, and the client's time to write a partition. Writes
``benchmarks/results/distributed.json``; ``--write-docs`` also writes the table and the
cost model in ``docs/distributed.md`` (between its ``distributed`` markers).
"""

import argparse
import math
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, ROOT, machine, publish, table  # noqa: E402

from mtlfaces.distributed import MAX_PARTITION  # noqa: E402  (the largest "auto" partition)

DOCS = os.path.join(ROOT, "docs", "distributed.md")
MARKERS = ("<!-- distributed:start -->", "<!-- distributed:end -->")
#: Photos in the cost model.
TARGET = 10_000_000


def lfw_photos(data_dir, n, folder):
    """The first ``n`` photos of lfw-gender.zip (sorted names), written into ``folder``."""
    import zipfile

    with zipfile.ZipFile(os.path.join(data_dir, "lfw-gender.zip")) as zf:
        names = sorted(m for m in zf.namelist() if m.lower().endswith(".jpg"))[:n]
        for i, name in enumerate(names):
            with open(os.path.join(folder, f"{i:05d}.jpg"), "wb") as fh:
                fh.write(zf.read(name))
    return len(names)


def astronaut_photos(n, folder):
    import cv2
    from skimage import data

    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    for i in range(n):
        scale = 0.5 + 0.5 * (i % 5) / 4
        cv2.imwrite(os.path.join(folder, f"{i:05d}.jpg"), cv2.resize(bgr, None, fx=scale,
                                                                    fy=scale))
    return n


def _peak_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _noop(i):
    return i


#: Each timing is the best of this many runs (the machine is shared).
REPEATS = 2

#: One process of the ceiling's: limits itself to one thread, analyses the paths in a JSON
#: file and prints its seconds.
_ALONE = """
import json, sys, time
from mtlfaces.distributed import limit_threads
limit_threads(1)
from mtlfaces import Analyzer
files = json.load(open(sys.argv[1]))
analyzer = Analyzer(readout=False)
analyzer.analyze(files[0])
start = time.perf_counter()
analyzer.analyze(files, status_rows=True, on_error="record")
print(time.perf_counter() - start)
"""


def single_process(folder, readout, repeats=REPEATS):
    """``mtlfaces predict``'s route in this process: (best seconds, rows)."""
    from mtlfaces import Analyzer

    analyzer = Analyzer(readout=readout)
    analyzer.analyze(os.path.join(folder, "00000.jpg"))  # warm: models loaded, graphs traced
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rows = analyzer.analyze(folder, status_rows=True, on_error="record")
        times.append(time.perf_counter() - start)
    return min(times), rows


def independent_processes(folder, n, scratch):
    """The ceiling without Dask: ``n`` separate one-thread processes, each on its share of
    the photos (every n-th), started together; seconds until the last is done."""
    import json
    import subprocess

    files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    procs = []
    for i in range(n):
        path = os.path.join(scratch, f"share{i}.json")
        with open(path, "w") as fh:
            json.dump(files[i::n], fh)
        procs.append(subprocess.Popen([sys.executable, "-c", _ALONE, path], text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
    return max(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)


def on_cluster(folder, workers, readout, scratch):
    """One run on a fresh local cluster of ``workers`` processes, warmed up first."""
    from mtlfaces import distributed as mdist

    start = time.perf_counter()
    with mdist.local_cluster(workers) as client:
        cluster_s = time.perf_counter() - start  # processes up, TensorFlow imported there
        start = time.perf_counter()
        warm = mdist.analyze_to_parquet([os.path.join(folder, "00000.jpg")] * workers,
                                        os.path.join(scratch, f"warm{workers}{readout}"),
                                        client=client, partition_size=1, readout=readout)
        load_s = time.perf_counter() - start
        times = []
        for repeat in range(REPEATS):
            out = os.path.join(scratch, f"run{workers}{readout}{repeat}")
            start = time.perf_counter()
            manifest = mdist.analyze_to_parquet(folder, out, client=client, readout=readout)
            times.append(time.perf_counter() - start)
        seconds = min(times)
        peaks = sorted(client.run(_peak_mb).values())
        t = time.perf_counter()
        client.gather(client.map(_noop, range(500), pure=False))
        per_task_ms = 1000 * (time.perf_counter() - t) / 500
        import pyarrow.parquet as pq

        tables = [pq.read_table(os.path.join(out, p["file"])) for p in manifest["partitions"]]
        t = time.perf_counter()
        for i, tab in enumerate(tables):
            pq.write_table(tab, os.path.join(scratch, f"w{i}.parquet"))
        write_ms = 1000 * (time.perf_counter() - t) / max(1, len(tables))
    return {"seconds": seconds, "rows": manifest["rows"], "faces": manifest["faces"],
            "errors": manifest["errors"], "partitions": len(manifest["partitions"]),
            "partition_size": manifest["partition_size"], "worker_peak_mb": peaks,
            "first_task_s": max(p["seconds"] for p in warm["partitions"]),
            "start_and_warm_s": load_s, "cluster_start_s": cluster_s,
            "scheduler_ms_per_task": per_task_ms,
            "write_ms_per_partition": write_ms}


def cost_model(result, photos=TARGET, workers=(1, 2, 8, 32, 128)):
    """Hours and core-hours for ``photos`` photos on N workers, from the measured rates:
    each worker's own rate (the 1-worker run) times N, times the 2-worker run's
    efficiency (speed-up / 2), plus the warm-up run."""
    rows = []
    for readout in ("off", "on"):
        one = result["runs"][f"1 worker, read-out {readout}"]
        two = result["runs"][f"2 workers, read-out {readout}"]
        rate = one["images_per_s"]
        efficiency = min(1.0, two["images_per_s"] / (2 * rate))
        for n in workers:
            seconds = photos / (rate * n * (efficiency if n > 1 else 1.0)) + \
                one["start_and_warm_s"]
            rows.append({"readout": readout, "workers": n, "hours": seconds / 3600,
                         "core_hours": n * seconds / 3600})
    return rows


def render(result):
    """docs/distributed.md's block of a result (``distributed.json``)."""
    runs = result["runs"]
    lines = ["| run | images/s | faces/s | speed-up | peak memory per worker |",
             "|---|---|---|---|---|"]
    for name, r in runs.items():
        peak = ", ".join(f"{p:,.0f}" for p in r["worker_peak_mb"]) + " MB" \
            if r.get("worker_peak_mb") else f"{r['peak_mb']:,.0f} MB (the process)" \
            if r.get("peak_mb") else ""
        speed = f"{r['speedup']:.2f}×" if r.get("speedup") else ""
        faces = f"{r['faces_per_s']:.1f}" if r.get("faces_per_s") else ""
        lines.append(f"| {name} | {r['images_per_s']:.1f} | {faces} | {speed} | {peak} |")
    o = result["overheads"]
    lines += ["", f"{result['data']}; {result['machine']['cpu_count']} CPU cores, one "
              "thread per worker; each time the best of "
              f"{result.get('repeats', 1)} runs. Speed-up: 2 over 1 with the same read-out "
              "setting. The separate processes split the photos between two plain "
              "`Analyzer` runs with no Dask: what the machine itself gives two processes.",
              "", f"Measured overheads: a worker's first task (loading the model, the "
              f"read-out and dlib's models) {o['first_task_s']:.1f} s, and the warm-up run "
              f"around it (every worker's first task, through the client) "
              f"{o['start_and_warm_s']:.1f} s; "
              + (f"starting the local cluster (processes up, TensorFlow imported in each) "
                 f"{o['cluster_start_s']:.1f} s; " if "cluster_start_s" in o else "")
              + f"the scheduler "
              f"{o['scheduler_ms_per_task']:.1f} ms per task; the client's Parquet write "
              f"{o['write_ms_per_partition']:.1f} ms per partition of "
              f"{o['partition_size']} inputs.", "",
              f"**Cost model for {TARGET:,} photos** like these (each worker's rate from "
              "the 1-worker run, times the 2-worker efficiency, plus the warm-up run):", "",
              "| read-out | workers | hours | core-hours |", "|---|---|---|---|"]
    for row in cost_model(result):
        lines.append(f"| {row['readout']} | {row['workers']} | {row['hours']:,.1f} | "
                     f"{row['core_hours']:,.0f} |")
    per_part = {tag: MAX_PARTITION / runs[f"1 worker, read-out {tag}"]["images_per_s"]
                for tag in ("off", "on")}
    lines += ["", f"At these rates a partition of {MAX_PARTITION} photos (the largest \"auto\" "
              f"size) keeps a worker busy {per_part['off']:.0f} s with the read-out off and "
              f"{per_part['on']:.0f} s with it on, against the scheduler's and the Parquet "
              f"write's milliseconds; {TARGET:,} photos make "
              f"{math.ceil(TARGET / MAX_PARTITION):,} such partitions, whose list and "
              "futures live on the client.",
              "", "`python benchmarks/bench_distributed.py --write-docs` writes this block."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="40 astronaut photos, no dataset (about a minute)")
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--write-docs", action="store_true",
                        help="also write docs/distributed.md's block (not with --quick)")
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="mtlfaces-bench-")
    try:
        folder = os.path.join(scratch, "photos")
        os.makedirs(folder)
        if args.quick:
            n, data = astronaut_photos(40, folder), "40 astronaut photos (quick run)"
        else:
            n = lfw_photos(args.data, args.photos, folder)
            data = f"the first {n} LFW photos of lfw-gender.zip (350×350 gray)"
        runs, overheads = {}, {}
        for readout in (False, True):
            tag = "on" if readout else "off"
            seconds, rows = single_process(folder, readout)
            faces = sum(r["status"] == "ok" for r in rows)
            runs[f"one process (mtlfaces predict), read-out {tag}"] = {
                "images_per_s": n / seconds, "faces_per_s": faces / seconds,
                "seconds": seconds, "peak_mb": _peak_mb()}
            print(f"one process, read-out {tag}: {n / seconds:.1f} images/s", flush=True)
            if not readout:
                alone = {k: min(independent_processes(folder, k, scratch)
                                for _ in range(REPEATS)) for k in (1, 2)}
                for k, best in alone.items():
                    name = (f"{k} separate process{'es' if k > 1 else ''} "
                            "(no Dask, the ceiling), read-out off")
                    runs[name] = {"images_per_s": n / best, "faces_per_s": None,
                                  "seconds": best}
                    if k == 2:
                        runs[name]["speedup"] = alone[1] / best
                    print(f"{name}: {n / best:.1f} images/s", flush=True)
            for workers in (1, 2):
                r = on_cluster(folder, workers, readout, scratch)
                r.update(images_per_s=n / r["seconds"], faces_per_s=r["faces"] / r["seconds"])
                name = f"{workers} worker{'s' if workers > 1 else ''}, read-out {tag}"
                if workers == 2:
                    r["speedup"] = r["images_per_s"] / runs[f"1 worker, read-out {tag}"][
                        "images_per_s"]
                runs[name] = r
                print(f"{name}: {r['images_per_s']:.1f} images/s", flush=True)
                if workers == 2 and not readout:
                    overheads = {k: r[k] for k in ("first_task_s", "start_and_warm_s",
                                                   "cluster_start_s",
                                                   "scheduler_ms_per_task",
                                                   "write_ms_per_partition",
                                                   "partition_size")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table([{"run": k, **{c: v.get(c) for c in ("images_per_s", "faces_per_s", "speedup")}}
           for k, v in runs.items()], ["run", "images_per_s", "faces_per_s", "speedup"])
    result = {"machine": machine(), "data": data, "photos": n, "runs": runs,
              "overheads": overheads, "repeats": REPEATS}
    table(cost_model(result), ["readout", "workers", "hours", "core_hours"])
    publish("distributed", result, args.quick, args.write_docs, [(DOCS, MARKERS, render)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
