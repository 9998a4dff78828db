"""Shared helpers for the research studies: the benchmarks' helpers, with results kept here.

Studies build on the recipe (``recipes/train_pretrained.py``, ``recipes/readout.py``) and on
the benchmarks' helpers (``benchmarks/common.py``); neither builds on a study.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
for _folder in ("recipes", "benchmarks"):
    if os.path.join(ROOT, _folder) not in sys.path:
        sys.path.insert(1, os.path.join(ROOT, _folder))

import common  # noqa: E402
from common import (DEFAULT_DATA, QUICK_LIMIT, current_rss_mb, dump_json, machine,  # noqa: E402,F401
                    median_time, peak_rss_mb, table)


def write_json(name, payload, quick=False):
    """Write ``research/results/<name>.json`` (``<name>_quick.json`` for a quick run)."""
    return common.write_json(name, payload, quick, results=RESULTS)


def continued_labels(est, y):
    """``y``'s task columns laid out for continuing ``est``: a head ``y`` has no column
    for (the bundled network's ``age_years``, say) gets an empty one, so that the
    continuation masks it (that head is not trained) instead of refusing ``y``."""
    import pandas as pd

    return pd.DataFrame({t: y[t] if t in y.columns else pd.Series([None] * len(y), dtype=object)
                         for t in est.tasks_}).set_axis(y.index)
