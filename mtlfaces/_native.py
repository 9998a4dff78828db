"""Native libraries' own stderr lines (libpng, FFmpeg), caught so they end up in our messages.

libpng and FFmpeg print straight to file descriptor 2, ahead of (and unlike) the one-line
error mtlfaces gives. :func:`captured_stderr` points descriptor 2 at a temporary file for
the length of a native call and hands back what was printed, so the caller can put it into
its error message or drop it.
"""

import contextlib
import os
import sys
import tempfile
import threading

_lock = threading.RLock()


class Captured:
    """What a native call printed: :attr:`text`, its lines joined by "; " (may be empty)."""

    text = ""


@contextlib.contextmanager
def captured_stderr():
    """Capture file descriptor 2 inside the block (set ``MTLFACES_NATIVE_LOGS=1`` to see it)."""
    out = Captured()
    if os.environ.get("MTLFACES_NATIVE_LOGS"):
        yield out
        return
    with _lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no descriptor 2 (an embedded interpreter)
            yield out
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield out
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                lines = sink.read(4096).decode("utf-8", "replace").splitlines()
                out.text = "; ".join(line.strip() for line in lines if line.strip())


def quiet_tensorflow(threads=None):
    """Import TensorFlow and Keras without their start-up log lines on the terminal.

    TensorFlow 2.21 prints oneDNN/CUDA notices through absl before any log level
    applies, so file descriptor 2 is pointed at /dev/null for the import and the
    first device set-up. Python exceptions are unaffected (they are raised later).
    With ``threads``, TensorFlow's thread pools get that many threads, set between the
    import and the set-up that fixes them (a no-op if TensorFlow was imported before).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    quiet = not os.environ.get("MTLFACES_TF_LOGS")
    saved = os.dup(2) if quiet else None
    devnull = os.open(os.devnull, os.O_WRONLY) if quiet else None
    try:
        if quiet:
            os.dup2(devnull, 2)
        import keras
        import tensorflow as tf

        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(int(threads))
        tf.config.list_logical_devices()  # device discovery logs here too
        del keras
    finally:
        if quiet:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
