"""Do inference-time levers help the bundled model? Measured on the validation splits.

    python research/posthoc.py [--data-dir ../shared/data] [--model FILE [--name NAME]] [--quick]

Nothing is retrained; each arm changes only how the trained network is used:

- ``no flip``: one pass per face (the bundled model averages each face with its mirror
  image, ``test_time_flip=True``: two passes);
- ``+ 4 shifts of N px``: the flip-averaged probabilities also averaged over the face
  shifted by N whole pixels up, down, left and right (edges repeated): ten passes;
- ``BN recalibrated``: every BatchNormalization layer's moving statistics recomputed as
  the mean batch statistics over the recipe's training images (the SWA paper's
  "bn_update", since the bundled model is a weight average whose statistics are the mean
  of the averaged networks'), on the images as given or through the training
  augmentation.

Reported per arm: accuracy per task on the recipe's validation splits (FER2013
PublicTest, the UTKFace hold-out, CK+ held-out subjects) and the network passes per face
(what the arm costs in throughput). Writes research/results/posthoc.json for the
bundled model, ``posthoc_<NAME>.json`` for another (``--name``, by default the model
file's name), so that measuring another network never replaces the bundled model's
results that RESULTS.md reports.
"""

import argparse
import os
import re
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA, QUICK_LIMIT, ROOT, machine, table, write_json  # noqa: E402

HEADLINE = {"emotion": ("fer2013_publictest", "emotion"), "gender": ("utkface", "gender"),
            "age": ("utkface", "age"), "CK+": ("ckplus", "emotion")}


def shifted(X, dy, dx):
    """``X`` (n, h, w[, c]) moved by whole pixels, the edge rows/columns repeated."""
    X = np.asarray(X)
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return X
    widths = [(0, 0), (pad, pad), (pad, pad)] + [(0, 0)] * (X.ndim - 3)
    padded = np.pad(X, widths, mode="edge")
    h, w = X.shape[1:3]
    return padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def probabilities(est, val, shifts=((0, 0),)):
    """``{validation set: [per-task probabilities]}`` of ``est``, summed over ``shifts``
    of each face (each set classified once per shift, for all its tasks)."""
    probs = {}
    for name in dict.fromkeys(name for name, _ in HEADLINE.values()):
        per_shift = [est.predict_proba(shifted(val[name][0], dy, dx)) for dy, dx in shifts]
        probs[name] = [sum(p[k] for p in per_shift) for k in range(len(est.tasks_))]
    return probs


def scores(probs, est, val):
    """Headline accuracies of ``probs`` (as :func:`probabilities` gives them; the tasks
    and classes those of ``est``)."""
    out = {}
    for label, (name, task) in HEADLINE.items():
        y = val[name][1]
        k = est.tasks_.index(task)
        mask = y[task].notna().to_numpy()
        predicted = np.asarray(est.classes_[k])[np.argmax(probs[name][k], axis=1)]
        out[label] = float(np.mean(predicted[mask] == y[task].to_numpy()[mask]))
    return out


def accuracies(est, val, shifts=((0, 0),)):
    """Headline accuracies with probabilities averaged over ``shifts`` of each face."""
    return scores(probabilities(est, val, shifts), est, val)


def recalibrate_batchnorm(est, X, augmented=False, batch_size=256, seed=0):
    """Recompute the moving mean and variance of every BatchNormalization layer of
    ``est``'s network as the mean over ``X`` (in batches) of the batch statistics.

    ``augmented``: pass the images through the network's training augmentation first
    (else the statistics are those of the images as given).
    """
    import keras

    model = est.model_
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    if augmented:
        start = model.input
    else:  # the input of the first convolution, after the augmentation layers
        start = next(layer for layer in model.layers if layer.name.startswith("conv")).input
    trunk = keras.Model(start, [layer.output for layer in norms])
    images = est._check_X(X)
    order = np.random.RandomState(seed).permutation(len(images))
    momenta = [layer.momentum for layer in norms]
    try:
        for k, begin in enumerate(range(0, len(order), batch_size)):
            for layer in norms:  # a running mean: batch k weighs 1 / (k + 1)
                layer.momentum = k / (k + 1)
            trunk(images[np.sort(order[begin:begin + batch_size])], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return est


def results_name(model, name=None):
    """The results file's name: ``posthoc`` for the bundled model, else ``posthoc_NAME``.

    ``NAME`` defaults to the model file's name without its extension; characters other
    than letters, digits, ``-`` and ``_`` become ``_``.
    """
    if not model:
        return "posthoc"
    given = os.path.basename(model).split(".")[0] if name is None else name
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", given).strip("_")
    if not safe:
        what = f"--name {given!r}" if name is not None else f"the model file name {model!r}"
        raise ValueError(f"{what} leaves no letters or digits for the results file's name; "
                         "give --name with letters or digits")
    return f"posthoc_{safe}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--model", default=None,
                        help="evaluate this model file (default: the bundled model)")
    parser.add_argument("--name", default=None,
                        help="with --model: results go to posthoc_NAME.json (default: the "
                             "model file's name without its extension)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} images per dataset: checks the script runs")
    args = parser.parse_args(argv)
    if args.name is not None and not args.model:
        parser.error("--name names the results of a --model FILE; the bundled model's "
                     "results are always posthoc.json")
    try:
        results = results_name(args.model, args.name)
    except ValueError as exc:
        parser.error(str(exc))

    import train_pretrained as recipe

    from mtlfaces import load_model, load_pretrained

    (X, _), val = recipe.load_splits(args.data_dir, recipe.RECIPE["image_size"],
                                     args.cache_dir, limit=QUICK_LIMIT if args.quick else None)

    def start():
        return load_model(args.model) if args.model else load_pretrained()

    plus = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    arms = [("as bundled (flip)", {}, [(0, 0)], None),
            ("no flip", {"test_time_flip": False}, [(0, 0)], None),
            ("+ 4 shifts of 1 px", {}, [(0, 0)] + plus, None),
            ("+ 4 shifts of 2 px", {}, [(0, 0)] + [(2 * a, 2 * b) for a, b in plus], None),
            ("BN recalibrated, images as given", {}, [(0, 0)], "as given"),
            ("BN recalibrated, augmented images", {}, [(0, 0)], "augmented")]
    rows = []
    for arm, params, shifts, recalibrate in arms:
        est = start().set_params(**params)
        t = time.time()
        if recalibrate:
            recalibrate_batchnorm(est, X, augmented=recalibrate == "augmented")
        rows.append(dict(arm=arm, passes=len(shifts) * (2 if est.test_time_flip else 1),
                         **accuracies(est, val, shifts), seconds=round(time.time() - t, 1)))
        print(rows[-1], flush=True)
    table(rows, ["arm", "emotion", "gender", "age", "CK+", "passes", "seconds"])
    write_json(results, {"machine": machine(), "model": args.model or "bundled",
                           "train_images": int(len(X)),
                           "validation_faces": {k: int(len(v[0])) for k, v in val.items()},
                           "rows": rows, "quick": args.quick}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
