"""The estimator: classification throughput by batch size, fit time per epoch, peak memory.

    python benchmarks/bench_classifier.py [--model FILE] [--quick]

Throughput is the bundled model's (or FILE's) ``predict_proba`` on random faces of its
input size, mirror averaging as the model has it. Fit time is a fresh network of the same
architecture trained on random faces for two epochs (the second timed), in float32 and in
bfloat16 (``mixed_precision=True``: faster only where the CPU has bfloat16 instructions or
a GPU computes; the JSON records the CPU's). Prints tables and writes
``benchmarks/results/classifier.json``.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, peak_rss_mb, table, write_json  # noqa: E402


def fit_seconds_per_epoch(clf, n_images, seed=0, mixed_precision=False):
    """Seconds of the second epoch of a fresh fit with ``clf``'s architecture."""
    import warnings

    import pandas as pd
    from sklearn.base import clone

    from mtlfaces.tasks import classes_by_task

    rng = np.random.RandomState(seed)
    size = clf.model_.input_shape[1]
    X = rng.randint(0, 256, (n_images, size, size)).astype(np.uint8)
    y = pd.DataFrame({t: rng.choice(np.asarray(c, dtype=object), n_images)
                      for t, c in classes_by_task(clf).items()})
    times = []

    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    fresh = clone(clf).set_params(epochs=2, validation_fraction=0.0, warm_start=False,
                                  callbacks=[Timer()], verbose=0, random_state=seed,
                                  mixed_precision=mixed_precision)
    with warnings.catch_warnings():  # the emulated-bfloat16 warning: this measures it
        warnings.filterwarnings("ignore", message=".*without bfloat16 instructions")
        fresh.fit(X, y)
    return times[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--quick", action="store_true", help="seconds: fewer batches and faces")
    args = parser.parse_args(argv)
    import mtlfaces
    from mtlfaces.evaluation import classification_throughput

    clf = mtlfaces.load_model(args.model) if args.model else mtlfaces.load_pretrained()
    sizes, repeats, n_fit = ([1, 8], 2, 16) if args.quick else ([1, 8, 64, 256], 5, 2048)
    rows = classification_throughput(clf, sizes, repeats)
    table(rows, ["batch", "median_ms", "faces_per_s", "mirror_averaging"])
    from mtlfaces._hardware import accelerator_in_use, bf16_instructions

    bf16, accelerator = bf16_instructions(), accelerator_in_use()
    fits = []
    for mixed in (False, True):
        epoch = fit_seconds_per_epoch(clf, n_fit, mixed_precision=mixed)
        fits.append({"precision": "bfloat16 (mixed_precision=True)" if mixed else "float32",
                     "seconds_per_epoch": round(epoch, 2),
                     "images_per_s": round(n_fit / epoch, 1)})
    known = "unknown" if bf16 is None else ", ".join(bf16) or "none"
    print(f"\nfit, {n_fit} images an epoch (batch {clf.batch_size}); CPU bfloat16 "
          f"instructions: {known}{'; an accelerator computes' if accelerator else ''}")
    table(fits, ["precision", "seconds_per_epoch", "images_per_s"])
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    write_json("classifier", {"machine": machine(), "model": args.model or "bundled",
                              "throughput": rows, "fit_images": n_fit, "fit": fits,
                              "cpu_bf16_instructions": bf16,
                              "accelerator": accelerator,
                              "fit_seconds_per_epoch": fits[0]["seconds_per_epoch"],
                              "fit_images_per_s": fits[0]["images_per_s"],
                              "peak_rss_mb": peak_rss_mb()}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
