"""Classification throughput of a fitted estimator: what ``mtlfaces benchmark`` and
``benchmarks/bench_classifier.py`` both measure."""

import time

import numpy as np


def classification_throughput(clf, batch_sizes, repeats=5, seed=0):
    """Median time of ``clf.predict_proba`` on random faces of the network's input size.

    Returns
    -------
    list of dict
        Per batch size: ``batch``, ``median_ms``, ``faces_per_s``, and ``mirror_averaging``
        (whether each face is also classified mirrored, doubling the work).
    """
    rng = np.random.RandomState(seed)
    height, _, channels = clf.model_.input_shape[1:]
    rows = []
    for size in batch_sizes:
        shape = (size, height, height) if channels == 1 else (size, height, height, channels)
        X = rng.randint(0, 256, shape).astype(np.uint8)
        clf.predict_proba(X)  # trace and warm up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            clf.predict_proba(X)
            times.append(time.perf_counter() - t)
        med = float(np.median(times))
        rows.append({"batch": int(size), "median_ms": round(med * 1000, 2),
                     "faces_per_s": round(size / med, 1),
                     "mirror_averaging": bool(getattr(clf, "test_time_flip", False))})
    return rows
