"""Silencing a known third-party warning in code that may run on several threads."""

import contextlib
import threading
import warnings

_LOCK = threading.RLock()


@contextlib.contextmanager
def ignoring(**filter_kwargs):
    """``warnings.catch_warnings()`` with one ``filterwarnings("ignore", **filter_kwargs)``
    (no arguments: every warning), under one process-wide lock.

    ``catch_warnings`` saves the process's global warning filters on entry and puts them
    back on exit. Two threads inside it at once put them back out of order and can leave
    "ignore" in place for the whole process: decoding a dataset on two threads silenced
    every later warning, the loader's own report of skipped files included. The lock makes
    each save and restore one step among mtlfaces' threads.
    """
    with _LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", **filter_kwargs)
        yield
