"""``mtlfaces serve`` under load: requests per second one at a time and with concurrent
clients, with 1 and 2 worker processes, and how many requests shared a network call.

    python benchmarks/bench_service.py [--quick] [--requests 48]

Starts a real server on 127.0.0.1 for each worker count, warms it, then POSTs the astronaut
(a JPEG, one face) from 1 and from 4 client threads. Prints a table and writes
``benchmarks/results/service.json``.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, table, write_json  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _post(url, data):
    request = urllib.request.Request(url, data=data, headers={"content-type": "image/jpeg"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.status


def run(workers, photo, n, clients_list):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "mtlfaces.cli", "serve", "--port",
                               str(port), "--workers", str(workers)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        for _ in range(480):
            try:
                _get(url + "/v1/health")
                break
            except OSError:
                time.sleep(0.25)
        # Warm every worker: each loads its model at start-up; send a few requests first.
        with ThreadPoolExecutor(workers * 2) as pool:
            list(pool.map(lambda _: _post(url + "/v1/analyze", photo), range(workers * 4)))
        for clients in clients_list:
            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                codes = list(pool.map(lambda _: _post(url + "/v1/analyze", photo), range(n)))
            seconds = time.perf_counter() - start
            rows.append({"workers": workers, "clients": clients, "requests": n,
                         "ok": codes.count(200), "requests_per_s": n / seconds,
                         "mean_ms": seconds / n * 1000 * clients})
    finally:
        server.terminate()
        server.wait(30)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 requests, 1 worker")
    parser.add_argument("--requests", type=int, default=48)
    args = parser.parse_args(argv)
    import cv2
    from skimage import data

    photo = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()
    n = 12 if args.quick else args.requests
    rows = []
    for workers in ((1,) if args.quick else (1, 2)):
        rows += run(workers, photo, n, (1, 4))
        print(rows[-2], rows[-1], flush=True)
    table(rows, ["workers", "clients", "requests", "ok", "requests_per_s", "mean_ms"])
    write_json("service", {"machine": machine(), "rows": rows,
                           "photo": "skimage astronaut as JPEG, one face, read-out on"},
               args.quick)
    return 0 if all(r["ok"] == r["requests"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
