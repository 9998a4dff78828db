"""The bundled network's speed levers, each against accuracy on the validation splits.

    python benchmarks/bench_speed.py [--quick] [--data-dir ../shared/data] [--write-docs]

For each way of running the bundled network (how 0.3 called it, the Keras network in
float32 instead of its bfloat16 mixed precision, called once for both mirror views, with
mirror averaging off, compiled with XLA, as a frozen graph,
and its 8-bit TensorFlow Lite copy, which predicts by default): faces/s at batch 1 and 256,
batch-1 latency, and accuracy on the fixed validation splits (UTKFace: age group, gender;
FER2013 PublicTest and CK+ held-out: emotion). Random faces are timed (speed does not depend
on the pixels); accuracy is measured on the real validation faces, so a lever that changes
the answers shows it. Writes ``benchmarks/results/speed.json``; ``--write-docs`` writes the
table in ``docs/speed.md``. The network alone: no detection, no read-out.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, ROOT, machine, publish, table  # noqa: E402

DOCS = os.path.join(ROOT, "docs", "speed.md")
MARKERS = ("<!-- speed:start -->", "<!-- speed:end -->")


def validation_sets(data_dir, limit=None):
    """{name: (images (n, 48, 48) uint8, labels)} of the fixed validation splits, loaded as
    the recipe loads them (at most ``limit`` faces each)."""
    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    from train_pretrained import load_datasets, split

    _, val = split(load_datasets(data_dir, 48, cache_dir=None))
    names = {"utkface": "UTKFace", "fer2013_publictest": "FER2013", "ckplus": "CK+"}
    return {names[k]: (X[:limit], y.iloc[:limit].reset_index(drop=True))
            for k, (X, y) in val.items()}


def runners(clf):
    """{lever: function (float batch (n, 48, 48, 1)) -> {task: (n, k) probabilities}}."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    model = clf.model_
    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)

    def both(x):
        return model(tf.concat([x, tf.reverse(x, axis=[2])], 0), training=False)

    one_view = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    xla = tf.function(both, input_signature=[spec], jit_compile=True)
    frozen = convert_variables_to_constants_v2(
        tf.function(both, input_signature=[spec]).get_concrete_function())
    names = list(model.output.keys()) if isinstance(model.output, dict) else model.output_names

    def averaged(fn, chunk):
        def run(x):
            parts = []
            for s in range(0, len(x), chunk):
                b = x[s:s + chunk]
                out = fn(tf.constant(b))
                out = out if isinstance(out, dict) else dict(zip(sorted(names), out))
                n = len(b)
                parts.append({t: (np.asarray(v[:n], np.float64) + np.asarray(v[n:], np.float64))
                              / 2 for t, v in out.items()})
            return {t: np.concatenate([p[t] for p in parts]) for t in parts[0]}
        return run

    def two_calls(x):  # 0.3: the batch, then its mirrors, 256 at a time
        parts = []
        for s in range(0, len(x), 256):
            b = x[s:s + 256]
            a, m = one_view(b), one_view(np.ascontiguousarray(b[:, :, ::-1]))
            parts.append({t: (np.asarray(a[t], np.float64) + np.asarray(m[t], np.float64)) / 2
                          for t in a})
        return {t: np.concatenate([p[t] for p in parts]) for t in parts[0]}

    def no_flip(x):
        parts = [{t: np.asarray(v, np.float64) for t, v in one_view(x[s:s + 64]).items()}
                 for s in range(0, len(x), 64)]
        return {t: np.concatenate([p[t] for p in parts]) for t in parts[0]}

    keras_clf = clone_with(clf, inference="keras")
    int8_clf = clone_with(clf, inference="int8") if getattr(clf, "int8_", None) else None

    def library(x):  # MultiTaskFaceClassifier.predict_proba with the Keras network
        return dict(zip(keras_clf.tasks_, keras_clf.predict_proba(x)))

    def int8(x):  # MultiTaskFaceClassifier.predict_proba with the 8-bit copy (the default)
        return dict(zip(int8_clf.tasks_, int8_clf.predict_proba(x)))

    from mtlfaces._int8 import float32_copy

    fp32 = float32_copy(model)
    fp32_both = tf.function(
        lambda x: fp32(tf.concat([x, tf.reverse(x, axis=[2])], 0), training=False),
        input_signature=[spec])

    levers = {
        "0.3: two calls (image, then mirror), chunks of 256": two_calls,
        "Keras float32 (no bfloat16 at predict time), one call, chunks of 64":
            averaged(fp32_both, 64),
        "Keras, one call for both views, chunks of 64": library,
        "Keras, mirror averaging off": no_flip,
        "XLA (jit_compile), one call, chunks of 64": averaged(xla, 64),
        "frozen graph (constants folded), chunks of 64": averaged(frozen, 64),
    }
    if int8_clf is not None:
        levers["int8 TensorFlow Lite copy, one call, chunks of 64 (the default)"] = int8
    return levers


def clone_with(clf, **params):
    """A shallow copy of the fitted estimator with other parameters (same network)."""
    import copy

    other = copy.copy(clf)
    return other.set_params(**params)


def speed(run, batch, repeats):
    x = np.random.RandomState(0).randint(0, 256, (batch, 48, 48, 1)).astype(np.float32) / 255
    run(x)
    run(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def accuracy(run, sets, classes):
    out = {}
    for name, (X, y) in sets.items():
        proba = run(X[..., np.newaxis].astype(np.float32) / 255)
        for task, p in proba.items():
            if task not in y or not y[task].notna().any() or (name == "UTKFace") != (
                    task != "emotion"):
                continue
            known = y[task].notna().to_numpy()
            guess = np.asarray(classes[task], dtype=object)[np.argmax(p, axis=1)]
            out[f"{task} ({name})"] = float((guess[known] == y[task][known].to_numpy()).mean())
    return out


README = os.path.join(ROOT, "README.md")
README_MARKERS = ("<!-- speed-summary:start -->", "<!-- speed-summary:end -->")


def render_summary(result):
    """The README's line of a result (``speed.json``): the default way of running the
    bundled network."""
    row = next(r for r in result["rows"] if r["lever"].endswith("(the default)"))
    return (f"The bundled network alone classifies a face in {row['latency_ms']:.1f} ms at "
            f"batch 1 and {row['faces_per_s_256']:,.0f} faces/s at batch 256 (its 8-bit copy, "
            "mirror averaging on). `python benchmarks/bench_speed.py --write-docs` writes "
            "this line.")


def render(result):
    rows = result["rows"]
    tasks = list(rows[0]["accuracy"])
    lines = ["| lever | batch 1 (ms) | faces/s at 1 | faces/s at 256 | "
             + " | ".join(tasks) + " |", "|---" * (4 + len(tasks)) + "|"]
    for r in rows:
        lines.append(f"| {r['lever']} | {r['latency_ms']:.1f} | {r['faces_per_s_1']:,.0f} | "
                     f"{r['faces_per_s_256']:,.0f} | "
                     + " | ".join(f"{100 * r['accuracy'][t]:.2f} %" for t in tasks) + " |")
    lines += ["", f"Bundled network alone (no detection, no read-out), "
              f"{result['machine']['cpu_count']} CPU cores; median of {result['repeats']} "
              "timed calls; `python benchmarks/bench_speed.py --write-docs` writes this block."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 faces per split, 3 repeats")
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    import mtlfaces
    from mtlfaces.tasks import classes_by_task

    repeats = 3 if args.quick else args.repeats
    sets = validation_sets(args.data_dir, 200 if args.quick else None)
    clf = mtlfaces.load_pretrained()
    classes = {t: [str(c) for c in v] for t, v in classes_by_task(clf).items()}
    rows = []
    for lever, run in runners(clf).items():
        one = speed(run, 1, repeats)
        rows.append({"lever": lever, "latency_ms": one * 1000, "faces_per_s_1": 1 / one,
                     "faces_per_s_256": 256 / speed(run, 256, repeats),
                     "accuracy": accuracy(run, sets, classes)})
        print(rows[-1], flush=True)
    table([{**{k: v for k, v in r.items() if k != "accuracy"}, **r["accuracy"]} for r in rows],
          ["lever", "latency_ms", "faces_per_s_1", "faces_per_s_256", *rows[0]["accuracy"]])
    result = {"machine": machine(), "repeats": repeats, "rows": rows,
              "faces": {k: len(v[0]) for k, v in sets.items()}}
    publish("speed", result, args.quick, args.write_docs,
            [(DOCS, MARKERS, render), (README, README_MARKERS, render_summary)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
