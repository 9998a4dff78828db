"""Levers that need training, measured as continuations of the bundled network: colour
input, soft age targets and mixup, against the same continuation without them.

    python research/continue_study.py [--data-dir ../shared/data] [--epochs 15]
        [--arms gray colour age_sigma mixup mixup_strong mixup_weighted] [--quick]

A from-scratch comparison does not converge in a CPU budget (research/input_study.py:
5 epochs told nothing), so every arm starts from the bundled network and continues it
the same way; only the lever differs. The committed results started from the fifth bundled
model (``--model benchmarks/models/pretrained_v5.mtlfaces``); the ``mixup`` arm's network
became the sixth, the bundled model since (train_pretrained.py's phase 6).

- ``colour``: the network is rebuilt for 3-channel input and its first convolution's
  kernel split over the channels by the luma weights the grayscale conversion uses
  (0.299, 0.587, 0.114). On an RGB face it then computes exactly what the bundled model
  computes on that face's gray version (checked: ``start_max_abs_diff``), so training
  starts from the bundled model's accuracy and only has to learn what colour adds.
  UTKFace is loaded in colour; FER2013 and CK+ are grayscale, given as three equal
  channels.
- ``gray``: the control, the same continuation on the grayscale input.
- ``age_sigma``: the control with ``age_sigma=AGE_SIGMA``: UTKFace's ages in years, each
  face's age-group target spread over the groups by a normal distribution of 3 years
  around its age (label-distribution learning; a 29-year-old is 0.57 Young, 0.43 Middle
  Age) instead of one-hot. Young and Middle Age are the groups the bundled model confuses
  most.
- ``mixup``: the control with ``mixup=MIXUP``: each training face blended with another
  face of its batch that has the same tasks labelled, with the same blend of their
  targets (``MultiTaskFaceClassifier``'s ``mixup``). MIXUP, 0.2, was fixed before the
  run: a mild mixup, two blends in three are more than 90 % one face.
- ``mixup_strong``: the same with MIXUP_STRONG (1: the share drawn uniformly), chosen
  after the ``mixup`` arm's run had shown a gain and before this one ran.
- ``mixup_weighted``: ``mixup`` with the age-group and gender losses weighted TASK_WEIGHTS
  (2 each, emotion 1: ``loss_weights``), so that more of the shared trunk's training
  signal comes from the two UTKFace tasks, whose targets are furthest from reach with the
  read-out. Weights fixed before the run; run as a continuation of the sixth bundled model
  (``--model mtlfaces/models/pretrained.mtlfaces --name continue_study_v6``), where the
  ``mixup`` arm of that run is its control. The rule, set before the run: it replaces v6
  as the bundled model if, with the read-out, both gender and age group are higher than
  v6's and emotion is at most 0.3 points lower.

Every arm continues with phase 4's settings (PHASE4: cosine schedule from 3e-4,
whole-pixel shifts, contrast, random erasing, no rotation; RECIPE's seed), ``--epochs``
epochs, and keeps the last epoch; each is scored on the recipe's validation splits. FER2013 and CK+
hold only gray faces, so the emotion head never sees colour in training: ``emotion
agreement`` is the share of UTKFace hold-out faces whose emotion the colour network
answers the same on the colour face and on its gray version (how much colour, unseen by
the emotion head, changes its answers). Each arm's model is saved to ``--out-dir`` (``ARM.mtlfaces``; ``ARM_quick.mtlfaces`` with ``--quick``).
Each arm is also scored as ``mtlfaces predict`` uses the network, with the descriptor
read-out averaged into age group and gender (``gender with read-out``, ``age with
read-out``; descriptor_probe.py's :func:`with_readout_accuracy`, on the UTKFace validation
faces at 200×200 in colour, their descriptors cached in ``--cache-dir``), beside the
model the arms start from scored the same way (``bundled_with_readout``); ``--no-readout`` skips
that. ``TASK gained`` / ``TASK lost``: validation faces the arm gets right and the bundled
model (the ``--model`` it starts from, if given) wrong, and the reverse (emotion on FER2013 PublicTest, gender and age group on the
UTKFace hold-out, network alone): a paired count, so a difference of a few faces can be
told from noise. ``--rescore`` trains nothing and adds these columns to the arms already
run, from their saved models in ``--out-dir``. Writes research/results/continue_study.json
(``--name NAME``: NAME.json) after each arm, keeping the rows of arms
not run this time (arms can be run one at a time; each row says its epochs);
``complete`` is false until every arm of ARMS has a row.
"""

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (DEFAULT_DATA, QUICK_LIMIT, ROOT, continued_labels, machine, table,  # noqa: E402
                     write_json)
from descriptor_probe import with_readout_accuracy  # noqa: E402

TASKS = ["age", "gender", "emotion"]
ARMS = ("gray", "colour", "age_sigma", "mixup", "mixup_strong", "mixup_weighted")
AGE_SIGMA = 3.0
MIXUP = 0.2
MIXUP_STRONG = 1.0
TASK_WEIGHTS = {"age": 2.0, "gender": 2.0, "emotion": 1.0}


def colourise(est):
    """Grow a fitted grayscale estimator to colour input, in place; returns ``est``.

    The first convolution's (3, 3, 1, k) kernel becomes (3, 3, 3, k): the gray kernel
    times each channel's luma weight, so the network computes on an RGB image what it
    computed on the image's gray version. Every other weighted layer is copied by name.
    """
    import keras

    from mtlfaces._preprocessing import LUMA
    from mtlfaces.tasks import classes_by_task

    gray = est.model_
    if gray.input_shape[-1] != 1:
        raise ValueError(f"colourise: the network's input is {gray.input_shape[1:]}, not grayscale")
    est.set_params(grayscale=False)
    sizes = {t: len(c) for t, c in classes_by_task(est).items()}
    colour = est._build(sizes)
    first = next(layer.name for layer in gray.layers if isinstance(layer, keras.layers.Conv2D))
    for layer in gray.layers:
        if not layer.weights:
            continue
        values = layer.get_weights()
        if layer.name == first:
            values = [values[0] * LUMA[None, None, :, None]] + values[1:]
        colour.get_layer(layer.name).set_weights(values)
    est.model_ = colour
    est._network_changed()  # the 8-bit copy is of the gray network
    return est


def three_channels(X):
    """(n, h, w) gray faces as (n, h, w, 3) with equal channels; colour faces unchanged."""
    X = np.asarray(X)
    return np.repeat(X[..., None], 3, axis=-1) if X.ndim == 3 else X


def load(recipe, data_dir, cache_dir, colour, limit):
    """The recipe's splits, UTKFace in colour when ``colour`` (all sets then 3-channel)."""
    datasets = recipe.load_datasets(data_dir, recipe.RECIPE["image_size"], cache_dir, limit)
    if colour:
        from mtlfaces.datasets import load_utkface

        datasets["utkface"] = load_utkface(os.path.join(data_dir, "UTKFace.tar.gz"),
                                           image_size=recipe.RECIPE["image_size"],
                                           grayscale=False, limit=limit, random_state=0,
                                           cache_dir=cache_dir)
        datasets = {k: (three_channels(X), y) for k, (X, y) in datasets.items()}
    return recipe.split(datasets)


NAME = "continue_study"


def previous_json(quick, name=NAME):
    """An earlier run's JSON ({} if there is none)."""
    import json

    import _common

    path = os.path.join(_common.RESULTS, f"{name}{'_quick' if quick else ''}.json")
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


def previous(quick, name=NAME):
    """Rows and per-arm details of an earlier run's JSON (none if there is none)."""
    old = previous_json(quick, name)
    return old.get("rows", []), old.get("arms", {})


def model_path(out_dir, arm, quick):
    """Where an arm's model is saved (``--quick`` runs' apart from the real ones)."""
    return os.path.join(out_dir, f"{arm}{'_quick' if quick else ''}.mtlfaces")


def readout_faces(args):
    """UTKFace validation faces, labels and descriptors for the read-out columns (60 faces,
    not cached, with ``--quick``)."""
    from descriptor_probe import validation_faces

    if args.quick:
        return validation_faces(args.data_dir, None, 1, limit=60)
    return validation_faces(args.data_dir, args.cache_dir)


def rounded(scores):
    return {k: round(v, 4) for k, v in scores.items()}


PAIRED = (("fer2013_publictest", "emotion"), ("utkface", "gender"), ("utkface", "age"))


def right_answers(est, val):
    """``{task: bool array}``: which labelled validation faces ``est`` answers right."""
    out = {}
    for name, task in PAIRED:
        X, y = val[name]
        labelled = y[task].notna().to_numpy()
        answers = est.predict(X[labelled])[:, est.tasks_.index(task)]
        out[task] = answers.astype(str) == y.loc[labelled, task].astype(str).to_numpy()
    return out


def paired_counts(est, val, bundled_answers):
    """Faces ``est`` gets right that the bundled model gets wrong (``TASK gained``) and the
    reverse (``TASK lost``); ``bundled_answers`` is :func:`right_answers` of the bundled
    model on the gray validation sets (the same faces, in the same order)."""
    ours = right_answers(est, val)
    out = {}
    for task in ours:
        out[f"{task} gained"] = int(np.sum(ours[task] & ~bundled_answers[task]))
        out[f"{task} lost"] = int(np.sum(~ours[task] & bundled_answers[task]))
    return out


def readout_columns(est, faces):
    """A row's read-out columns: gender and age with the descriptor read-out averaged in."""
    scores = with_readout_accuracy(est, *faces)
    return {f"{task} with read-out": round(scores[task], 4) for task in ("gender", "age")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "runs", "colour"))
    parser.add_argument("--model", default=None,
                        help="the grayscale model to start from (default: the bundled one)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} images per dataset, 1 epoch: "
                             "checks the script runs")
    parser.add_argument("--no-readout", dest="readout", action="store_false",
                        help="do not score the arms with the descriptor read-out")
    parser.add_argument("--name", default=NAME,
                        help="results file: research/results/NAME.json (another name keeps "
                             "a run from another --model apart from the committed study)")
    parser.add_argument("--rescore", action="store_true",
                        help="train nothing: score the arms' saved models (--out-dir) again "
                             "(read-out, faces gained and lost) and add that to their rows")
    args = parser.parse_args(argv)

    import keras
    import pandas as pd

    import train_pretrained as recipe

    from mtlfaces import load_model, load_pretrained
    from mtlfaces._preprocessing import to_grayscale
    from mtlfaces.datasets import with_age_in_years

    epochs = 1 if args.quick else args.epochs
    limit = QUICK_LIMIT if args.quick else None
    settings = {k: v for k, v in recipe.RECIPE.items() if k not in recipe.ARCHITECTURE}
    settings.update(recipe.PHASE4, epochs=epochs, verbose=0 if args.quick else 2)
    os.makedirs(args.out_dir, exist_ok=True)
    rows, notes = previous(args.quick, args.name)
    faces = readout_faces(args) if args.readout else None
    extra = {"bundled_with_readout": previous_json(args.quick, args.name).get(
        "bundled_with_readout")}
    # The model the arms start from (the bundled one unless --model): its scores with the
    # read-out, and the faces gained and lost are counted against it.
    start_model = load_model(args.model) if args.model else load_pretrained()
    if faces is not None:
        extra["bundled_with_readout"] = rounded(with_readout_accuracy(start_model, *faces))
    gray_val = load(recipe, args.data_dir, args.cache_dir, False, limit)[1]
    bundled_answers = right_answers(start_model, gray_val)
    if args.rescore:
        val = gray_val
        for arm in args.arms:
            path = model_path(args.out_dir, arm, args.quick)
            row = next((r for r in rows if r["arm"] == arm), None)
            if row is None or not os.path.exists(path):
                parser.error(f"--rescore: arm {arm} has no row or no saved model "
                             f"({path}); run it first")
            est = load_model(path)
            if est.model_.input_shape[-1] == 3:  # the colour arm: its validation in colour
                val_arm = load(recipe, args.data_dir, args.cache_dir, True, limit)[1]
            else:
                val_arm = val
            row.update(paired_counts(est, val_arm, bundled_answers))
            if faces is not None:
                row.update(readout_columns(est, faces))
            print(row, flush=True)
        write_json(args.name, {**previous_json(args.quick, args.name), **extra, "rows": rows},
                   args.quick)
        return 0
    for arm in args.arms:
        colour = arm == "colour"
        (X, y), val = load(recipe, args.data_dir, args.cache_dir, colour, limit)
        est = load_model(args.model) if args.model else load_pretrained()
        start = None
        if colour:
            Xu = val["utkface"][0][:512]
            before = est.predict_proba(Xu)  # the gray network on the gray versions
            colourise(est)
            after = est.predict_proba(Xu)
            # bf16 rounds the colour and gray computations differently: a little apart.
            start = {"max_abs_diff": max(float(np.max(np.abs(a - b)))
                                         for a, b in zip(before, after)),
                     # faces with every class task's answer unchanged (an age_years
                     # head answers an expected value, not its most probable year)
                     "same_answers": float(np.mean(np.all(
                         [np.argmax(a, 1) == np.argmax(b, 1) for t, a, b in
                          zip(est.tasks_, before, after) if t != "age_years"], axis=0)))}
        Xv = np.concatenate([val["utkface"][0], val["fer2013_publictest"][0]])
        yv = pd.concat([val["utkface"][1], val["fer2013_publictest"][1]], ignore_index=True)
        callbacks = [keras.callbacks.ModelCheckpoint(
                         os.path.join(args.out_dir, f"{arm}.weights.h5"),
                         save_weights_only=True),
                     keras.callbacks.CSVLogger(os.path.join(args.out_dir, f"{arm}_log.csv"))]
        est.set_params(callbacks=callbacks, warm_start=True, **settings)
        if arm == "age_sigma":  # UTKFace's ages in years; the others have no age label
            est.set_params(age_sigma=AGE_SIGMA)
            y = with_age_in_years(y)
        if arm in ("mixup", "mixup_strong", "mixup_weighted"):
            est.set_params(mixup=MIXUP_STRONG if arm == "mixup_strong" else MIXUP)
        if arm == "mixup_weighted":
            est.set_params(loss_weights=dict(TASK_WEIGHTS))
        t = time.time()
        est.fit(X, continued_labels(est, y[TASKS]),  # other heads masked
                validation_data=(Xv, continued_labels(est, yv[TASKS])))
        train_s = time.time() - t
        est.set_params(callbacks=None)
        report = recipe.validate(est, val)
        row = dict(arm=arm, **{k: round(v, 4) for k, v in
                               recipe.validation_summary(report).items()},
                   epochs=epochs, train_minutes=round(train_s / 60, 1),
                   parameters=int(est.model_.count_params()))
        if colour:
            Xu = val["utkface"][0]
            on_colour = est.predict(Xu)[:, est.tasks_.index("emotion")]
            on_gray = est.predict(np.repeat(to_grayscale(np.asarray(Xu, dtype=np.float32)), 3,
                                            axis=-1))[:, est.tasks_.index("emotion")]
            row["emotion_agreement"] = round(float(np.mean(on_colour == on_gray)), 4)
            row["start_max_abs_diff"] = round(start["max_abs_diff"], 5)
            row["start_same_answers"] = round(start["same_answers"], 4)
        row.update(paired_counts(est, val, bundled_answers))
        if faces is not None:
            row.update(readout_columns(est, faces))
        rows = [r for r in rows if r["arm"] != arm] + [row]
        notes[arm] = {"validation": report, "history": est.history_}
        print(row, flush=True)
        est.save(model_path(args.out_dir, arm, args.quick))
        write_json(args.name, {
            "machine": machine(), "epochs": epochs, "start": args.model or "bundled model",
            "settings": {k: v for k, v in settings.items() if k != "verbose"},
            "age_sigma": AGE_SIGMA, "mixup": MIXUP,
            "mixup_strong": MIXUP_STRONG, "task_weights": TASK_WEIGHTS, **extra, "rows": rows, "arms": notes,
            "complete": {r["arm"] for r in rows} == set(ARMS)}, args.quick)
    table(rows, ["arm", "emotion", "gender", "age", "ckplus_emotion", "emotion_agreement",
                 "gender with read-out", "age with read-out", "train_minutes"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
