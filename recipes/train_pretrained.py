"""Rebuild the bundled pretrained model from UTKFace + FER2013 + CK+ with one command.

    python recipes/train_pretrained.py --data-dir ../shared/data --teacher v6.mtlfaces

Two schedules (SCHEDULES, ``--schedule``). The default, v7's (the bundled network since
0.4): phase 1 trains from scratch for 60 epochs (cosine schedule from 1e-3) on PHASE3's
augmentation and keeps its last epoch, and phase 6 (below) continues it with mixup; every
face also learns the teacher's probabilities for the tasks its dataset lacks (``--teacher``,
v6's file) and UTKFace's faces their age in years (a fourth head). v6's
(``--schedule v6``; the teacher), in the terms of the phases: phase 1 trains from scratch
(RECIPE: 32 epochs, cosine schedule from 1e-3); phase 2 (RESTART) continues from phase
1's best epoch with a warm restart of the cosine schedule (16 more epochs from 3e-4);
phases 3 and 4 (PHASE3, PHASE4, 20 epochs each) restart it again on sharper, more varied
training images, phase 4 without rotation. Each restart keeps its last epoch. The weights
at the ends of phases 3 and 4 are averaged (AVERAGE), and phase 6 (PHASE6, 15 epochs)
restarts once more from that mean with mixup; its last epoch is the saved model. Phase 5
(PHASE5, another restart with another seed before the average, which is then of three
ends) was measured and is not part of the bundled model: ``--phase5-epochs 20`` runs it.
``--restart-epochs 0`` (``--phase3-epochs 0``, ..., ``--phase6-epochs 0``) leaves a phase out; the average is of
the AVERAGE phases that ran, if two or more did and the last of them is the last phase run
before phase 6 (without phase 6 the average is the saved model);
``--continue-from MODEL --from-phase N`` runs phases N and after on a saved model (how
the bundled model was made: each phase on the previous phase's model file, the average
with ``--average-models``; the README's model card says which files).

A run can be stopped and continued: ``--resume`` with the same ``--checkpoint-dir``
(where the arguments are recorded, ``run.json``) keeps the phases that finished and goes on
with a phase stopped midway from its last finished epoch (weights, optimizer state and the
schedule's step are backed up after every epoch, ``PHASE_backup/``). ``--filters``,
``--convs-per-block`` and ``--dense-units`` train another network from scratch with the
same phases (the bundled model's: 32-64-128-256, 2, 256).

Elsewhere (a GPU machine without the archives), decode once here and carry the arrays:

    python recipes/train_pretrained.py --export-arrays arrays/     # ~80 MB of PNG + CSV
    KERAS_BACKEND=jax python recipes/train_pretrained.py --arrays arrays/

(``--export-parts N`` spreads the files over N folders of about equal size, to carry
one at a time; recipes/README.md says how.)

The arrays are the loaders' output, losslessly (PNG), so the splits and the training
are the same. On JAX, mtlfaces up to 0.3.1 ran every training step op by op (Keras
turns XLA off for a network with RandomTranslation or RandomZoom): about 1 s a step on an
H200, slower than the 2-core CPU, so the bundled models were trained on the CPU. Since the
fix (``mtlfaces._network.allow_xla``) an H200 trains an epoch of UTKFace's 16,284 training
faces in 0.43 s after a 40 s compilation (research/input_width_study.py).

The last step fits the descriptor read-out that ``mtlfaces predict`` averages into age
group and gender (``readout.fit_readout``: a logistic regression on dlib's face
descriptor of the UTKFace faces outside the validation part) and writes it beside
``--out`` as ``descriptor_readout.json``; ``--no-readout`` skips it (``--arrays`` runs,
which have no UTKFace archive, must).

Every hyper-parameter and seed is in RECIPE, RESTART, PHASE3, PHASE4, PHASE5, AVERAGE and
PHASE6 below.
Splits (fixed, never trained on):
- emotion: FER2013 PublicTest;
- age group and gender: 15 % of UTKFace, chosen by hashing each file name
  (``mtlfaces.datasets.utkface_validation_mask``);
- CK+: 20 % of subjects (``ckplus_validation_mask``), reported as a second emotion set.
Phase 1 keeps its epoch of lowest combined validation loss, later phases their last; metrics
are printed at the end and written to ``recipes/results/pretrained_validation.json``.
"""

import argparse
import copy
import json
import os
import resource
import shutil
import sys
import time

import numpy as np
import pandas as pd

from mtlfaces._classifier import ARCHITECTURES

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

# --quick: images per dataset (a seeded random subset). A quick run checks that the recipe
# runs end to end; its accuracies mean nothing.
QUICK_LIMIT = 600


def dump_json(path, payload):
    """Write ``payload`` to ``path`` whole or not at all (a stopped run leaves no half file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, default=str)
    os.replace(tmp, path)

EPOCHS = 32

RECIPE = dict(
    **ARCHITECTURES["bundled"],  # image_size, grayscale, filters, convs, dense, dropout
    learning_rate=1e-3, lr_schedule="cosine", batch_size=128, epochs=EPOCHS,
    early_stopping=False, mixed_precision=True,
    # Phases 1 and 2 shift with bilinear resampling, as mtlfaces 0.1.0 did (that is how
    # the bundled model's first phases were trained); see PHASE3.
    augment=dict(shift_interpolation="bilinear"),
    label_smoothing=0.0, class_weight=None, loss_weights=None, mixup=0.0,
    test_time_flip=True, random_state=2026, verbose=2,
)
# Phase 2: the same training continued from phase 1's best epoch with a warm restart of
# the cosine schedule (a new Adam). It keeps its last epoch, where the schedule reaches
# zero: in phase 2 the validation loss stays above phase 1's best (2.07-2.18 vs 2.05 for
# the bundled model) or rises, while validation accuracy rises (the network grows more
# confident, wrong answers cost more), so the loss cannot choose the epoch there. A first phase 2 of 32 epochs from 5e-4 overfitted (training emotion
# accuracy 0.75 against 0.63 on validation by epoch 21): hence 16 epochs from 3e-4.
RESTART = dict(epochs=16, learning_rate=3e-4)
# Phase 3: a second warm restart with sharper, more varied training images. The bilinear
# shift after the rotation resampled every image twice: training faces were 44 % less
# sharp (mean |Laplacian| of FER2013 crops, 0.066 vs 0.117) than those the model sees,
# and the phase-2 model scored higher on slightly blurred validation faces (emotion
# +1.0 points at Gaussian sigma 0.6, age +0.5 at 0.4; research/sharpness.py). Whole-pixel shifts remove the
# second resampling; contrast changes and random erasing work against the overfitting
# seen in phase 2. Last epoch kept.
PHASE3 = dict(epochs=20, learning_rate=3e-4,
              augment=dict(shift=0.1, contrast=0.2, erase=0.25))
# Phase 4: a third restart without rotation. Any rotation resamples bilinearly (training
# faces 27 % less sharp, research/sharpness.py), and the phase-3 model still scored
# higher on slightly blurred emotion faces; the cropper aligns the eyes level at
# inference. Alone, its last epoch traded (on the phase-3 model: emotion +0.8 points,
# gender -0.3, age -0.3, CK+ +0.6) and overfitted more (training emotion accuracy 0.76
# against 0.66). AVERAGE: the bundled model is the mean of the weights at the ends of
# phases 3 and 4 (the two restarts' low-learning-rate ends lie in one basin: stochastic
# weight averaging), which is better than either on emotion, gender and age.
PHASE4 = dict(epochs=20, learning_rate=3e-4,
              augment=dict(rotation=0, shift=0.1, contrast=0.2, erase=0.25))
# Phase 5, off by default (epochs 0; ``--phase5-epochs 20`` runs it): a fourth restart from
# phase 4's end with phase 3's augmentation and another seed (other shuffles, other random
# images); AVERAGE then takes the mean of three restarts' ends. Measured on the bundled
# model's phase-4 file (54 min): phase 5 alone emotion 67.5 %, gender 93.2 %, age 69.9 %,
# CK+ 89.7 %; the mean of phases 3-5 67.6 / 93.2 / 71.3 / 92.3 % against the bundled mean of
# phases 3-4, 67.7 / 93.1 / 71.1 / 92.3 %: 4 faces fewer right on emotion (of 3,579), 2 and
# 7 more on gender and age (of 2,742), no change worth 54 more minutes of training
# (research/results/phase5_trial*.json).
PHASE5 = dict(epochs=0, learning_rate=3e-4, random_state=2030,
              augment=dict(shift=0.1, contrast=0.2, erase=0.25))
AVERAGE = ("phase3", "phase4", "phase5")
# Phase 6: a fifth restart, from the average (AVERAGE), with mixup: each training face
# blended with another of its batch that has the same tasks labelled, and their targets
# with it (``MultiTaskFaceClassifier(mixup=0.2)``; alpha 0.2 was fixed before it was
# measured). Phase 4's augmentation, RECIPE's seed, last epoch kept, no new average.
# Measured as research/continue_study.py's ``mixup`` arm on the fifth bundled model (the
# mean of phases 3 and 4; 39 min): emotion 68.3 % (+0.6), gender 93.3 % (+0.2), age 71.0 %
# (-0.1), CK+ 94.2 % (+1.9); with the descriptor read-out gender 94.3 % (+0.2) and age
# 74.3 % (+1.1). That arm's network is the sixth bundled model.
PHASE6 = dict(epochs=15, learning_rate=3e-4, mixup=0.2, random_state=RECIPE["random_state"],
              augment=dict(PHASE4["augment"]))


# The next model's targets (issue #32), each an option of this command:
# --emotion-targets ferplus: FER2013's training faces learn the distribution of FER+'s ten
# votes over the seven emotions (recipes/ferplus.py; faces voted mostly unknown or not a
# face are dropped), mixed with their original label (--ferplus-share), which the
# accuracy metric keeps.
# --teacher MODEL: distillation; the teacher's probabilities for the tasks a face's dataset
# lacks (age group and gender on FER2013 and CK+, emotion on UTKFace) are soft targets of
# weight --teacher-weight (a real label's is 1).
# --age-years: a fourth head, a distribution over the years YEARS (older faces: the last),
# trained on UTKFace's ages spread by a normal of --years-sigma years (label-distribution
# learning); its median is the age in years (mtlfaces.tasks.median_years).
# --ferplus-share: the votes' share of the target (the rest the original label's one-hot):
# votes alone pull emotion away from the original labels it is scored on
# (research/RESULTS.md, "The next model's levers").
FERPLUS_SHARE = 0.5
YEARS_TASK = "age_years"
YEARS = (1, 90)
TEACHER_WEIGHT = 0.5
YEARS_SIGMA = 3.0
#: The bundled models' schedules (``--schedule``; an option given on the command line wins).
#: v7, the bundled network since 0.4: one phase of 60 epochs on phase 3's sharp
#: augmentation, kept at its last epoch, then phase 6's mixup; it distils v6 (``--teacher``)
#: and trains the years head. v6, its teacher: phase 1 (32 epochs, best epoch), a restart,
#: phases 3 and 4, their average, phase 6.
SCHEDULES = {
    "v7": dict(epochs=60, restart_epochs=0, phase3_epochs=0, phase4_epochs=0,
               phase6_epochs=PHASE6["epochs"], phase1_augment="sharp", phase1_keep="last",
               age_years=True),
    "v6": dict(epochs=EPOCHS, restart_epochs=RESTART["epochs"],
               phase3_epochs=PHASE3["epochs"], phase4_epochs=PHASE4["epochs"],
               phase6_epochs=PHASE6["epochs"], phase1_augment="bilinear", phase1_keep="best",
               age_years=False),
}
DEFAULT_SCHEDULE = "v7"
#: The schedules that distil a teacher (``--teacher``; ``none`` to train without one).
NEEDS_TEACHER = ("v7",)
#: v6's file in the repository's history (the teacher v7 was distilled from).
V6_COMMIT = "9101995"


def clip_years(values):
    """Ages in years → ints within YEARS (None stays None)."""
    return np.array([None if v is None or v != v else int(min(max(v, YEARS[0]), YEARS[1]))
                     for v in values], dtype=object)


def years_distribution(years, sigma, classes):
    """Soft targets of the age_years head: a normal of ``sigma`` around each age (clipped to
    YEARS) over the head's ``classes`` (years), zero rows where the age is None."""
    classes = np.asarray(classes, dtype=float)
    soft = np.zeros((len(years), len(classes)), np.float32)
    for i, a in enumerate(clip_years(years)):
        if a is not None:
            p = np.exp(-0.5 * ((classes - a) / sigma) ** 2)
            soft[i] = p / p.sum()
    return soft


def teacher_targets(teacher, X, y, tasks):
    """The teacher's probabilities for the tasks of ``tasks`` each face lacks a label for
    (zero rows where it has one): ``{task: (n, k)}``."""
    proba = dict(zip(teacher.tasks_, teacher.predict_proba(X)))
    out = {}
    for task in tasks:
        if task in proba:
            p = proba[task] / proba[task].sum(axis=1, keepdims=True)
            out[task] = np.where(y[task].isna().to_numpy()[:, None], p, 0.0).astype(np.float32)
    return out


def training_targets(args, X, y, tasks, years=None):
    """The training set with the targets the options ask for: ``(X, y, soft_targets)``;
    ``years``: the age_years head's classes (default: :func:`years_classes` of ``y``)."""
    soft = {}
    if args.emotion_targets == "ferplus":
        import ferplus

        from mtlfaces.tasks import EMOTIONS

        votes, drop, _ = ferplus.ferplus_targets(y, args.data_dir)
        X, y, votes = X[~drop], y[~drop].reset_index(drop=True), votes[~drop]
        onehot = np.zeros_like(votes)
        rows = np.flatnonzero(votes.sum(axis=1) > 0)  # FER2013 faces: all labelled
        onehot[rows, [EMOTIONS.index(e) for e in y["emotion"].iloc[rows]]] = 1.0
        share = args.ferplus_share
        soft["emotion"] = np.where(votes.sum(axis=1, keepdims=True) > 0,
                                   share * votes + (1 - share) * onehot, 0.0).astype(np.float32)
        print(f"FER+ votes: {int(drop.sum())} FER2013 faces dropped (voted mostly unknown "
              "or not a face)", flush=True)
    if args.teacher:
        from mtlfaces import load_model, load_pretrained

        teacher = load_pretrained() if args.teacher == "bundled" else load_model(args.teacher)
        guesses = teacher_targets(teacher, X, y, [t for t in tasks if t != YEARS_TASK])
        for task, p in guesses.items():
            mine = soft.get(task)
            soft[task] = p if mine is None else np.where(
                mine.sum(axis=1, keepdims=True) > 0, mine, p)
        print(f"teacher {args.teacher}: soft targets for " + ", ".join(
            f"{t} on {int((p.sum(1) > 0).sum())} faces" for t, p in guesses.items()), flush=True)
    if args.age_years:
        y, soft[YEARS_TASK] = years_targets(y, args.years_sigma, years)
    return X, y, soft


def years_targets(y, sigma=YEARS_SIGMA, classes=None):
    """``y`` with its ages in years clipped to YEARS, and the age_years head's soft targets
    (a normal of ``sigma`` years around each age over ``classes``, default
    :func:`years_classes` of ``y``; zero rows where there is none)."""
    y = y.assign(**{YEARS_TASK: clip_years(y[YEARS_TASK].to_numpy(dtype=object))})
    classes = years_classes(y) if classes is None else list(classes)
    return y, years_distribution(y[YEARS_TASK].to_numpy(dtype=object), sigma, classes)


def years_classes(y):
    """The age_years head's classes: the years (clipped to YEARS) of the training faces;
    on the whole UTKFace training part, every year from 1 to 90."""
    return sorted({v for v in y[YEARS_TASK] if v is not None})


def monitored_years(years, classes):
    """Validation ages as labels of the age_years head: clipped to YEARS, and to the
    nearest of its ``classes`` (a --quick subset lacks some years)."""
    classes = np.asarray(classes)
    return np.array([None if v is None else int(classes[np.argmin(np.abs(classes - v))])
                     for v in clip_years(years)], dtype=object)


def after_average(name):
    """Whether phase ``name`` runs after the average of the AVERAGE phases (phase 6)."""
    return int(name[-1]) > max(int(n[-1]) for n in AVERAGE)


ARCHITECTURE = ("filters", "convs_per_block", "dense_units", "dropout", "image_size",
                "grayscale", "mixed_precision")


DATASETS = ("utkface", "fer2013", "ckplus")
# In --checkpoint-dir: the run's arguments (what --resume continues) and its progress
# (each finished phase's summary and the seconds of every epoch trained).
RUN, PROGRESS = "run.json", "progress.json"
#: The run's options that change the model, written with its validation (the phases'
#: hyper-parameters are written in full beside them).
RECORDED_OPTIONS = ("schedule", "epochs", "restart_epochs", "phase3_epochs", "phase4_epochs",
                    "phase5_epochs", "phase6_epochs", "filters", "dense_units", "readout",
                    "emotion_targets", "ferplus_share", "teacher", "teacher_weight", "age_years",
                    "years_sigma", "phase1_augment", "phase1_keep", "without_ckplus")
QUICK_EPOCHS = 1  # --quick: epochs of each phase that runs
QUICK_READOUT_FACES = 200  # --quick: UTKFace faces described for the read-out (dlib, ~0.1 s each)


def load_datasets(data_dir, image_size, cache_dir, limit=None):
    """The three datasets as ``{name: (X, y)}``, decoded from the archives (cached)."""
    from mtlfaces import datasets as D

    kw = dict(image_size=image_size, grayscale=True, cache_dir=cache_dir)
    return {
        "utkface": D.load_utkface(os.path.join(data_dir, "UTKFace.tar.gz"), limit=limit,
                                  random_state=0, **kw),
        "fer2013": D.load_fer2013(os.path.join(data_dir, "fer2013.tar.gz"), limit=limit,
                                  random_state=0, **kw),
        "ckplus": D.load_ckplus(os.path.join(data_dir, "CK+48.zip"), **kw),
    }


#: Faces per PNG file of --export-arrays (48×48: about 13 MB each), so that the arrays can
#: travel in parts (--export-parts) where a transfer has a size limit.
CHUNK_FACES = 8000


def export_arrays(datasets, out_dir, parts=1):
    """Write each dataset's decoded images and labels losslessly: PNG files of up to
    CHUNK_FACES faces (``NAME-001-of-003.png``, ...) and the labels (``NAME.csv.gz``).

    Lets the recipe run where the archives are not (a GPU machine reached with a size
    limit). With ``parts`` > 1 the files are spread over
    ``out_dir/part1``, ``part2``, ... of about equal size, to carry one at a time;
    :func:`read_arrays` reads them back from anywhere under one folder.
    """
    from PIL import Image

    if parts < 1:
        raise ValueError(f"parts={parts!r}; expected 1 or more")
    files = []  # every file written, before it goes to its part
    staging = os.path.join(out_dir, ".staging")
    os.makedirs(staging, exist_ok=True)
    for name, (X, y) in datasets.items():
        X = np.asarray(X)
        if X.dtype != np.uint8 or X.ndim != 3:
            raise ValueError(f"{name}: expected (n, h, w) uint8 images, got {X.shape} {X.dtype}")
        starts = range(0, max(len(X), 1), CHUNK_FACES)
        for i, start in enumerate(starts):
            chunk = X[start:start + CHUNK_FACES]
            path = os.path.join(staging, f"{name}-{i + 1:03d}-of-{len(starts):03d}.png")
            Image.fromarray(chunk.reshape(-1, X.shape[2])).save(path, optimize=True)
            files.append(path)
        path = os.path.join(staging, f"{name}.csv.gz")
        y.to_csv(path, index=False)
        files.append(path)
        print(f"exported {name}: {X.shape}", flush=True)
    # Largest first into the lightest part: parts of about equal size.
    sizes = [0] * parts
    for path in sorted(files, key=os.path.getsize, reverse=True):
        k = int(np.argmin(sizes))
        sizes[k] += os.path.getsize(path)
        where = out_dir if parts == 1 else os.path.join(out_dir, f"part{k + 1}")
        os.makedirs(where, exist_ok=True)
        os.replace(path, os.path.join(where, os.path.basename(path)))
    os.rmdir(staging)
    if parts > 1:
        print("parts: " + ", ".join(f"part{k + 1} {b / 1e6:.1f} MB" for k, b in enumerate(sizes)),
              flush=True)


def read_arrays(in_dir, image_size):
    """Read what :func:`export_arrays` wrote (its files anywhere under ``in_dir``), checking
    that no file is missing and the shapes against the labels."""
    import glob
    import re

    from PIL import Image

    every = glob.glob(os.path.join(in_dir, "**", "*"), recursive=True)
    out = {}
    for name in DATASETS:
        labels = [f for f in every if os.path.basename(f) == f"{name}.csv.gz"]
        pattern = rf"{re.escape(name)}-(\d+)-of-(\d+)\.png"
        chunks = {(int(m.group(1)), int(m.group(2))): f for f in every
                  if (m := re.fullmatch(pattern, os.path.basename(f)))}
        totals = {n for _, n in chunks}
        if len(labels) != 1 or len(totals) != 1:
            raise ValueError(f"{in_dir}: {name}.csv.gz and {name}-001-of-NNN.png ... are not "
                             f"there once each (found {len(labels)} label files, image files "
                             f"of {len(totals)} exports); give the folder that holds every "
                             "part --export-arrays wrote, and only those")
        total = totals.pop()
        missing = [i for i in range(1, total + 1) if (i, total) not in chunks]
        if missing:
            raise ValueError(f"{in_dir}: {name}-{missing[0]:03d}-of-{total:03d}.png is "
                             "missing; give the folder that holds every part --export-arrays "
                             "wrote")
        chunks = {i: f for (i, _), f in chunks.items()}
        y = pd.read_csv(labels[0], keep_default_na=False, na_values=[""])
        strips = [np.asarray(Image.open(chunks[i])) for i in sorted(chunks)]
        X = np.concatenate([s.reshape(-1, s.shape[1], s.shape[1]) for s in strips])
        if len(X) != len(y) or X.shape[1] != image_size:
            raise ValueError(f"{in_dir}/{name}: {X.shape} images for {len(y)} labels; "
                             f"expected {image_size}×{image_size} faces, one per label row")
        for col in y.columns:  # missing labels are None in the loaders' frames
            if y[col].dtype == object or y[col].isna().any():
                y[col] = y[col].astype(object).where(y[col].notna(), None)
        out[name] = (X, y)
    return out


def split(datasets):
    """Fixed splits: returns (train (X, y), {validation set: (X, y)})."""
    from mtlfaces import datasets as D

    (Xu, yu), (Xf, yf), (Xc, yc) = (datasets[k] for k in DATASETS)
    u_val, f_val, c_val = (D.validation_mask(y) for y in (yu, yf, yc))
    yu = yu.assign(split=np.where(u_val, "validation", "train"))
    yc = yc.assign(split=np.where(c_val, "validation", "train"))
    train = (np.concatenate([Xu[~u_val], Xf[~f_val], Xc[~c_val]]),
             pd.concat([yu[~u_val], yf[~f_val], yc[~c_val]], ignore_index=True))
    val = {
        "utkface": (Xu[u_val], yu[u_val].reset_index(drop=True)),
        "fer2013_publictest": (Xf[f_val], yf[f_val].reset_index(drop=True)),
        "ckplus": (Xc[c_val], yc[c_val].reset_index(drop=True)),
    }
    return train, val


def without_ckplus(train, val):
    """The splits with CK+ left out of training: ``(train, val)`` where ``train`` lacks
    CK+'s faces and ``val["ckplus"]`` holds all of CK+'s faces (its training subjects'
    and its hold-out's), every one unseen, so CK+ is a cross-dataset check of emotion on
    posed faces."""
    (X, y), (Xc, yc) = train, val["ckplus"]
    seen = (y["source"] == "ckplus").to_numpy()
    val = dict(val, ckplus=(np.concatenate([X[seen], Xc]),
                            pd.concat([y[seen], yc], ignore_index=True)))
    return (X[~seen], y[~seen].reset_index(drop=True)), val


def load_splits(data_dir, image_size, cache_dir, limit=None):
    """Load the three datasets and return (train, validation sets) as (X, y) pairs."""
    return split(load_datasets(data_dir, image_size, cache_dir, limit))


def compute_device():
    """Where Keras trains: backend and accelerator (or the CPU count)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        dev = jax.devices()[0]
        return f"jax {dev.platform} {getattr(dev, 'device_kind', '')}".strip()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return f"tensorflow {len(gpus)} GPU"
    return f"{backend} cpu ({os.cpu_count()} cores)"


def layer_weights(model):
    """``{layer name: weights}`` of a network's weighted layers."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def average_into(model, others):
    """Set each weighted layer of ``model`` to the mean of its weights and those of
    ``others`` (a list of ``{layer name: weights}``, matched by name; augmentation layers
    hold none).

    Raises ValueError, naming the layer, when the networks differ in a weighted layer.
    """
    mine = layer_weights(model)
    for other in others:
        if set(mine) != set(other):
            raise ValueError(f"cannot average: the networks differ in layers "
                             f"{sorted(set(mine) ^ set(other))[:5]}")
        for name, weights in mine.items():
            shapes = [w.shape for w in weights]
            if shapes != [w.shape for w in other[name]]:
                raise ValueError(f"cannot average: layer {name!r} has weights of shapes "
                                 f"{shapes} and {[w.shape for w in other[name]]}")
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([sum(ws) / len(ws) for ws in
                               zip(mine[layer.name], *(o[layer.name] for o in others))])


def validate(est, val):
    """Per-set, per-task metrics of ``est`` on the validation sets (with an ``age_years``
    head: its mean absolute error in years on the UTKFace faces, ``utkface.age_years``, as
    :func:`mtlfaces.evaluation.evaluate` scores it)."""
    from mtlfaces.evaluation import evaluate

    # Only UTKFace's faces have ages in years: evaluate leaves the head out elsewhere.
    return {name: evaluate(est, X, y) for name, (X, y) in val.items()}


def validation_summary(report):
    """The headline figures of a :func:`validate` report: four accuracies, and the age
    error in years when the network has an ``age_years`` head."""
    out = {"emotion": report["fer2013_publictest"]["emotion"]["accuracy"],
           "gender": report["utkface"]["gender"]["accuracy"],
           "age": report["utkface"]["age"]["accuracy"],
           "ckplus_emotion": report["ckplus"]["emotion"]["accuracy"]}
    if YEARS_TASK in report["utkface"]:
        out["age_mae_years"] = report["utkface"][YEARS_TASK]["mae"]
    return out


def _as_given(path):
    """A model file's path for the results JSON: relative to the repository when inside it
    (every run's file is called ``pretrained.mtlfaces``, so the name alone says nothing)."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def print_report(report):
    """A :func:`validate` report, set by set."""
    from mtlfaces.evaluation import format_report

    for name, r in report.items():
        print(f"\n== {name} ==\n{format_report(r)}")


def write_report(results, quick, report, **head):
    """``head`` and a :func:`validate` report (with its summary) into the JSON ``results``
    (``..._quick.json`` for a quick run)."""
    out = results if not quick else results.replace(".json", "_quick.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    dump_json(out, {**head, "validation_summary": validation_summary(report),
                    "validation": report, "quick": quick})
    print(f"wrote {out}")


def average_models(args, val, results):
    """``--average-models A B ...``: the last model's network with the mean of all the
    models' weights, validated."""
    from mtlfaces import load_model

    files = args.average_models
    est = load_model(files[-1])
    try:
        average_into(est.model_, [layer_weights(load_model(f).model_) for f in files[:-1]])
    except ValueError as exc:
        raise SystemExit(f"--average-models {' '.join(files)}: {exc}") from None
    est._network_changed()  # the last file's 8-bit copy is not of the average
    report = validate(est, val)
    print_report(report)
    est.save(args.out)
    print(f"\nsaved {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")
    write_report(results, args.quick, report, average_of=[_as_given(f) for f in files])
    return 0


def validate_model(path, val, results, quick):
    """``--validate MODEL``: a saved model's validation report (what the recipe prints
    and writes at its end, without training), into ``results``. The Keras network is
    scored, as at the end of training, also when the file has an 8-bit copy (which
    ``recipes/quantize.py`` scores beside it)."""
    from mtlfaces import load_model

    report = validate(load_model(path).set_params(inference="keras"), val)
    print_report(report)
    write_report(results, quick, report, model=_as_given(path))
    return 0


def with_schedule(args):
    """``args`` with each option left unset (None) taken from ``--schedule``'s SCHEDULES."""
    for key, value in SCHEDULES[args.schedule].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def resumed_args(parser, args, argv):
    """``--resume``: the arguments recorded in ``--checkpoint-dir`` by the run to continue.

    An argument given now (in ``argv``, even at its default value) that differs from the
    recorded one is a usage error (naming both values): a resumed run trains what the
    stopped run was training.
    """
    path = os.path.join(args.checkpoint_dir, RUN)
    if not os.path.exists(path):
        parser.error(f"--resume: nothing to resume in {args.checkpoint_dir} (no {RUN}); "
                     "run the same command without --resume to start")
    with open(path) as fh:
        recorded = json.load(fh)["args"]
    only_given = copy.deepcopy(parser)  # the same options, none filled in by default
    for action in only_given._actions:
        action.default = argparse.SUPPRESS
    given = vars(only_given.parse_args(argv))
    clash = [k for k, v in given.items()
             if k not in ("resume", "checkpoint_dir", "unpack_checkpoint")
             and v != recorded.get(k)]
    if clash:
        parser.error("--resume continues the run recorded in "
                     f"{path}; it was started with " + "; ".join(
                         f"--{k.replace('_', '-')} {recorded.get(k)!r}, not {vars(args)[k]!r}"
                         for k in clash))
    defaults = {k: parser.get_default(k) for k in vars(args)}  # options added since
    return argparse.Namespace(**{**defaults, **recorded, "resume": True,
                                 "checkpoint_dir": args.checkpoint_dir})


def epochs_done(checkpoint_dir, name):
    """Epochs of phase ``name`` that a stopped run trained and backed up (0: none)."""
    meta = os.path.join(checkpoint_dir, f"{name}_backup", "training_metadata.json")
    if not os.path.exists(meta):
        return 0
    with open(meta) as fh:
        return int(json.load(fh)["epoch"])


def read_log(path, before=None):
    """A phase's CSV log (one row per epoch) as a DataFrame; only epochs < ``before``."""
    if not os.path.exists(path) or not os.path.getsize(path):
        return pd.DataFrame()
    log = pd.read_csv(path)
    return log[log["epoch"] < before] if before is not None else log


def phase_callbacks(name, checkpoint_dir, progress, done, keep_best):
    """Keras callbacks for one phase: its checkpoint, CSV log, per-epoch backup (what
    ``--resume`` continues from) and clock. ``done``: epochs already trained;
    ``keep_best``: checkpoint the epoch of lowest validation loss, not the last."""
    import keras

    class Clock(keras.callbacks.Callback):
        """Seconds of each epoch into the progress file."""

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()

        def on_epoch_end(self, epoch, logs=None):
            seconds = progress["epoch_seconds"].setdefault(name, [])
            seconds.append(round(time.time() - self.t0, 1))
            dump_json(os.path.join(checkpoint_dir, PROGRESS), progress)

    log_path = os.path.join(checkpoint_dir, f"{name}_log.csv")
    log = read_log(log_path, before=done)
    if done:  # epochs after the backup were lost with the stopped run
        log.to_csv(log_path, index=False)
        del progress["epoch_seconds"].setdefault(name, [])[done:]
    else:
        progress["epoch_seconds"][name] = []
    # A .weights.h5 file (Keras 3 stores the optimizer's state with the weights).
    # Phase 1 keeps its epoch of lowest validation loss (the best before a resume
    # included) unless --phase1-keep last; later phases keep their last.
    best = float(log["val_loss"].min()) if keep_best and len(log) else None
    return [keras.callbacks.ModelCheckpoint(
                os.path.join(checkpoint_dir, f"{name}.weights.h5"), monitor="val_loss",
                save_best_only=keep_best, save_weights_only=True,
                initial_value_threshold=best),
            keras.callbacks.CSVLogger(log_path, append=bool(done)),
            Clock(),  # before the backup: a stop between them loses nothing counted
            # Weights, optimizer state (the schedule's step) and epoch after every epoch.
            keras.callbacks.BackupAndRestore(os.path.join(checkpoint_dir, f"{name}_backup"),
                                             delete_checkpoint=False)]


def build_parser():
    """The command line's options (``--help``); :func:`with_schedule` fills the schedule's."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "..", "shared", "data"))
    parser.add_argument("--out", default=os.path.join(ROOT, "mtlfaces", "models",
                                                      "pretrained.mtlfaces"))
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--checkpoint-dir", default=os.path.join(ROOT, "runs", "pretrained"))
    parser.add_argument("--schedule", choices=tuple(SCHEDULES), default=DEFAULT_SCHEDULE,
                        help="the bundled model's schedule to run (default: v7's, the "
                             "bundled network's; v6: its teacher's); the options below marked "
                             "'schedule' take its values unless given")
    parser.add_argument("--epochs", type=int, default=None,
                        help="phase 1's epochs (schedule: v7 60, v6 32)")
    parser.add_argument("--results", default=os.path.join(HERE, "results",
                                                          "pretrained_validation.json"))
    parser.add_argument("--arrays", default=None, metavar="DIR",
                        help="read the datasets from arrays written by --export-arrays "
                             "instead of the archives in --data-dir")
    parser.add_argument("--export-arrays", default=None, metavar="DIR",
                        help="decode the archives, write their arrays to DIR and stop")
    parser.add_argument("--export-parts", type=int, default=1, metavar="N",
                        help="with --export-arrays: spread the files over DIR/part1 ... "
                             "partN of about equal size, to carry one part at a time "
                             "(--arrays reads them from anywhere under one folder)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} images per dataset, 1 epoch: "
                             "checks the recipe runs")
    parser.add_argument("--learning-rate", type=float, default=RECIPE["learning_rate"])
    parser.add_argument("--restart-epochs", type=int, default=None,
                        help="phase 2: epochs of the restarted cosine schedule (0: none; "
                             "schedule: v7 0, v6 16)")
    parser.add_argument("--restart-learning-rate", type=float,
                        default=RESTART["learning_rate"])
    parser.add_argument("--phase3-epochs", type=int, default=None,
                        help="phase 3: epochs of the second restart (0: none; schedule: "
                             "v7 0, v6 20)")
    parser.add_argument("--phase4-epochs", type=int, default=None,
                        help="phase 4: epochs of the third restart (0: none; schedule: "
                             "v7 0, v6 20)")
    parser.add_argument("--phase5-epochs", type=int, default=PHASE5["epochs"],
                        help="phase 5: epochs of the fourth restart (default 0: none; it "
                             "was measured at 20 and is not in the bundled model)")
    parser.add_argument("--phase6-epochs", type=int, default=None,
                        help="phase 6: epochs of the fifth restart, with mixup, from the "
                             "average (0: none; schedule: 15)")
    parser.add_argument("--average-models", nargs="+", default=None, metavar="MODEL",
                        help="only average two or more saved models' weights (as the "
                             "recipe does after the last phase; the network and settings "
                             "are the last model's), validate, save to --out; results to "
                             "--results if given, else CHECKPOINT_DIR/average_validation.json")
    parser.add_argument("--validate", default=None, metavar="MODEL",
                        help="train nothing: validate this saved model's Keras network "
                             "on the recipe's splits and write the report to --results if "
                             "given, else CHECKPOINT_DIR/validation.json")
    parser.add_argument("--continue-from", default=None, metavar="MODEL",
                        help="skip phase 1 (or more, see --from-phase) and continue this model")
    parser.add_argument("--from-phase", type=int, choices=(2, 3, 4, 5, 6), default=2,
                        help="with --continue-from: the first phase to run")
    parser.add_argument("--filters", type=int, nargs="+", default=list(RECIPE["filters"]),
                        metavar="N", help="filters of each convolution block (the network "
                        "trained from scratch; default: the bundled model's)")
    parser.add_argument("--convs-per-block", type=int, default=RECIPE["convs_per_block"])
    parser.add_argument("--dense-units", type=int, nargs="+",
                        default=list(RECIPE["dense_units"]), metavar="N")
    parser.add_argument("--no-readout", dest="readout", action="store_false",
                        help="skip the last step: fitting the descriptor read-out (dlib's face "
                             "descriptor of every UTKFace face, about 13 min on 2 cores the "
                             "first time, cached) into descriptor_readout.json beside --out")
    parser.add_argument("--emotion-targets", choices=("fer2013", "ferplus"), default="fer2013",
                        help="what FER2013's training faces learn: their labels, or the "
                             "distribution of FER+'s votes (fer2013new.csv in --data-dir)")
    parser.add_argument("--ferplus-share", type=float, default=FERPLUS_SHARE,
                        help="with --emotion-targets ferplus: the votes' share of each FER2013 "
                             "face's target, the rest its original label's (1: votes only)")
    parser.add_argument("--teacher", default=None, metavar="MODEL",
                        help="distil this model (a file, or 'bundled') into the tasks each "
                             "face's dataset lacks; 'none': no teacher (schedule: v7 needs "
                             "one, v6's file; v6 none)")
    parser.add_argument("--teacher-weight", type=float, default=TEACHER_WEIGHT)
    parser.add_argument("--age-years", action=argparse.BooleanOptionalAction, default=None,
                        help=f"train a fourth head, {YEARS_TASK}: a distribution over the "
                             f"years {YEARS[0]}-{YEARS[1]}, whose median is the age "
                             "(schedule: v7 yes, v6 no)")
    parser.add_argument("--years-sigma", type=float, default=YEARS_SIGMA)
    parser.add_argument("--without-ckplus", action="store_true",
                        help="train without CK+ and score emotion on all of CK+'s faces, "
                             "none seen: a cross-dataset check (issue #32's report; give "
                             "--teacher none too for a network that owes nothing to CK+: "
                             "the bundled one was trained on it)")
    parser.add_argument("--phase1-augment", choices=("bilinear", "sharp"), default=None,
                        help="phase 1's augmentation: shifts resampled bilinearly (as up to "
                             "v6) or phase 3's (whole-pixel shifts, contrast, erasing) "
                             "(schedule: v7 sharp, v6 bilinear)")
    parser.add_argument("--phase1-keep", choices=("best", "last"), default=None,
                        help="phase 1 keeps its epoch of lowest validation loss, or its last "
                             "(schedule: v7 last, v6 best)")
    parser.add_argument("--pack-checkpoint", default=None, metavar="FILE",
                        help="only write the run in --checkpoint-dir into one file, to commit "
                             "and resume elsewhere (recipes/checkpoint_file.py)")
    parser.add_argument("--unpack-checkpoint", default=None, metavar="FILE",
                        help="with --resume: first write the run packed in FILE into "
                             "--checkpoint-dir")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run recorded in --checkpoint-dir where it "
                             "stopped: finished phases are kept, a phase stopped midway "
                             "goes on from its last finished epoch (weights, optimizer "
                             "state and schedule restored); the other arguments are the "
                             "recorded ones")
    return parser


def main(argv=None):
    parser = build_parser()
    args = with_schedule(parser.parse_args(argv))
    if args.average_models is not None and len(args.average_models) < 2:
        parser.error(f"--average-models needs two or more models, got {args.average_models}")
    alone = [f"--{k.replace('_', '-')}" for k in ("average_models", "export_arrays", "validate")
             if getattr(args, k)]
    if args.resume and alone:
        parser.error(f"--resume continues a training; it does not go with {alone[0]}")
    if len(alone) > 1:
        parser.error(f"{alone[0]} and {alone[1]} are two jobs; give one")
    if args.export_parts < 1:
        parser.error(f"--export-parts {args.export_parts}: expected 1 or more")
    if args.validate and not os.path.exists(args.validate):
        parser.error(f"--validate {args.validate}: no such model file")
    if args.pack_checkpoint:
        import checkpoint_file

        try:
            size = checkpoint_file.pack(args.checkpoint_dir, args.pack_checkpoint)
        except FileNotFoundError as exc:
            parser.error(f"--pack-checkpoint: {exc}")
        print(f"packed {args.checkpoint_dir} into {args.pack_checkpoint} ({size / 1e6:.1f} MB)")
        return 0
    if args.unpack_checkpoint:
        import checkpoint_file

        if not args.resume:
            parser.error("--unpack-checkpoint goes with --resume (it restores a run to go on "
                         "with)")
        if not os.path.exists(args.unpack_checkpoint):
            parser.error(f"--unpack-checkpoint {args.unpack_checkpoint}: no such file")
        try:
            files = checkpoint_file.unpack(args.unpack_checkpoint, args.checkpoint_dir)
        except ValueError as exc:
            parser.error(f"--unpack-checkpoint: {exc}")
        print(f"unpacked {len(files)} files of {args.unpack_checkpoint} into "
              f"{args.checkpoint_dir}", flush=True)
    if args.resume:
        args = resumed_args(parser, args, argv)
    new_training = not (alone or args.continue_from or args.resume)  # a resume: as recorded
    if new_training and args.schedule in NEEDS_TEACHER and args.teacher is None:
        parser.error(
            f"--schedule {args.schedule} (the bundled network's) distils v6 into the tasks "
            "each face's dataset lacks: give --teacher FILE, v6's model file (train it with "
            "--schedule v6 --out runs/v6.mtlfaces --checkpoint-dir runs/v6, or take it from "
            f"the repository: git show {V6_COMMIT}:mtlfaces/models/pretrained.mtlfaces > "
            "runs/v6.mtlfaces), or --teacher none to train without one")
    if args.teacher == "none":
        args.teacher = None
    if args.teacher not in (None, "bundled") and not os.path.exists(args.teacher):
        parser.error(f"--teacher {args.teacher}: no such model file")
    architecture = {"filters": tuple(args.filters), "convs_per_block": args.convs_per_block,
                    "dense_units": tuple(args.dense_units)}
    changed = [k for k, v in architecture.items() if v != RECIPE[k]]
    if args.continue_from and changed:
        parser.error(f"--continue-from {args.continue_from} trains that model's network; "
                     f"--{changed[0].replace('_', '-')} does not go with it")
    archive = os.path.join(args.data_dir, "UTKFace.tar.gz")
    if (args.readout and not args.export_arrays and args.average_models is None
            and args.validate is None
            and not os.path.exists(archive)):
        parser.error(f"the descriptor read-out is fitted on {archive}, which is not there; "
                     "give --data-dir, or --no-readout to skip that last step")

    import keras

    from mtlfaces import MultiTaskFaceClassifier, load_model
    from mtlfaces.tasks import classes_by_task

    years = None  # the age_years head's classes: the training faces' years, or
    if args.continue_from:  # those of the model continued (a --quick subset lacks some)
        continued = load_model(args.continue_from)
        has_years = YEARS_TASK in continued.tasks_
        if has_years:
            years = [int(c) for c in classes_by_task(continued)[YEARS_TASK]]
        if has_years != bool(args.age_years) and not args.resume:  # before the data
            flag = "--age-years" if has_years else "--no-age-years"
            parser.error(f"--continue-from {args.continue_from} has "
                         f"{'the' if has_years else 'no'} {YEARS_TASK} head; continue it with "
                         f"{flag} (--schedule {args.schedule} sets "
                         f"{'--age-years' if args.age_years else '--no-age-years'})")

    recipe = dict(RECIPE, epochs=QUICK_EPOCHS if args.quick else args.epochs,
                  learning_rate=args.learning_rate, soft_target_weight=args.teacher_weight,
                  **architecture)
    if args.phase1_augment == "sharp":
        recipe["augment"] = dict(PHASE3["augment"])
    t0 = time.time()
    limit = QUICK_LIMIT if args.quick else None
    if args.export_arrays:
        export_arrays(load_datasets(args.data_dir, recipe["image_size"], args.cache_dir),
                      args.export_arrays, args.export_parts)
        return 0
    if args.arrays:
        datasets = read_arrays(args.arrays, recipe["image_size"])
        if limit:  # a random subset, as the loaders' ``limit`` takes
            pick = {k: np.sort(np.random.RandomState(0).permutation(len(X))[:limit])
                    for k, (X, _) in datasets.items()}
            datasets = {k: (X[pick[k]], y.iloc[pick[k]].reset_index(drop=True))
                        for k, (X, y) in datasets.items()}
    else:
        datasets = load_datasets(args.data_dir, recipe["image_size"], args.cache_dir, limit)
    (X, y), val = split(datasets)
    if args.without_ckplus:
        (X, y), val = without_ckplus((X, y), val)
    print(f"loaded {len(X)} training images in {time.time() - t0:.1f}s; validation: "
          + ", ".join(f"{k} {len(v[0])}" for k, v in val.items()), flush=True)
    def side_results(name):
        # Their JSON is not the recipe's: never over the committed results unless asked.
        return (args.results if args.results != parser.get_default("results")
                else os.path.join(args.checkpoint_dir, name))

    if args.average_models:
        return average_models(args, val, side_results("average_validation.json"))
    if args.validate:
        return validate_model(args.validate, val, side_results("validation.json"), args.quick)
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    # Monitor on both held-out sets together, so the best epoch is chosen on all tasks.
    Xv = np.concatenate([val["utkface"][0], val["fer2013_publictest"][0]])
    yv = pd.concat([val["utkface"][1], val["fer2013_publictest"][1]], ignore_index=True)
    tasks = ["age", "gender", "emotion"] + ([YEARS_TASK] if args.age_years else [])
    X, y, soft = training_targets(args, X, y, tasks, years)
    if args.age_years:
        yv = yv.assign(**{YEARS_TASK: monitored_years(yv[YEARS_TASK].to_numpy(dtype=object),
                                                      years or years_classes(y))})

    def epochs(n):  # quick mode: QUICK_EPOCHS of each phase that runs
        return min(n, QUICK_EPOCHS) if args.quick else n

    restart = dict(epochs=epochs(args.restart_epochs), learning_rate=args.restart_learning_rate)
    phase3 = dict(PHASE3, epochs=epochs(args.phase3_epochs))
    phase4 = dict(PHASE4, epochs=epochs(args.phase4_epochs))
    phase5 = dict(PHASE5, epochs=epochs(args.phase5_epochs))
    phase6 = dict(PHASE6, epochs=epochs(args.phase6_epochs))
    phases = [("phase1", dict(epochs=recipe["epochs"], learning_rate=recipe["learning_rate"])),
              ("phase2", restart), ("phase3", phase3), ("phase4", phase4),
              ("phase5", phase5), ("phase6", phase6)]
    phases = [(name, settings) for name, settings in phases if settings["epochs"] > 0]
    training = {k: v for k, v in recipe.items() if k not in ARCHITECTURE}
    if args.continue_from:
        est = continued  # loaded above, before the data
        est.set_params(**training)
        phases = [(n, s) for n, s in phases if int(n[-1]) >= args.from_phase]
        recipe["continued_from"] = _as_given(args.continue_from)
    else:
        est = MultiTaskFaceClassifier(tasks=tuple(tasks), **recipe)
    recipe.update({k: est.get_params()[k] for k in ARCHITECTURE})  # what is trained
    summary = {}
    ends = {}  # each phase's final weights, for AVERAGE
    if args.continue_from:
        ends[f"phase{args.from_phase - 1}"] = layer_weights(est.model_)
    progress_path = os.path.join(args.checkpoint_dir, PROGRESS)
    if args.resume and os.path.exists(progress_path):
        with open(progress_path) as fh:
            progress = json.load(fh)
    else:  # a new run: nothing of an earlier one in this directory is resumed
        progress = {"phases": {}, "epoch_seconds": {}}
        for name, _ in phases:
            shutil.rmtree(os.path.join(args.checkpoint_dir, f"{name}_backup"),
                          ignore_errors=True)
        dump_json(progress_path, progress)
        dump_json(os.path.join(args.checkpoint_dir, RUN),
                  {"args": {k: v for k, v in vars(args).items() if k != "resume"}})
    finished = [name for name, _ in phases if name in progress["phases"]]
    for name in finished:  # --resume: phases the stopped run finished are kept
        est = load_model(os.path.join(args.checkpoint_dir, f"{name}.mtlfaces"))
        est.set_params(**training)
        ends[name] = layer_weights(est.model_)
        if after_average(name) and "average" in progress and "average" not in summary:
            summary["average"] = progress["average"]  # taken before this phase
        summary[name] = progress["phases"][name]
        print(f"{name}: finished by the stopped run, kept", flush=True)

    def average(est):
        """The mean of the AVERAGE phases' ends into ``est`` (the network at the end of
        the last phase run), if two or more of them ran and the last phase run is one of
        them; its validation report, or None when there is nothing to average."""
        averaged = [name for name in AVERAGE if name in ends]
        if len(averaged) < 2 or not summary or list(summary)[-1] not in averaged:
            return None
        average_into(est.model_, [ends[name] for name in averaged[:-1]])
        est._network_changed()
        report = validate(est, val)
        summary["average"] = dict(of=averaged, validation_summary=validation_summary(report))
        progress["average"] = summary["average"]
        dump_json(progress_path, progress)
        print(f"average of {', '.join(averaged)}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in summary["average"]["validation_summary"].items()),
            flush=True)
        return report

    report = None
    for name, settings in phases[len(finished):]:
        if after_average(name) and "average" not in summary:
            # Phase 6 continues the average (taken again on a resume: its phases' ends
            # are kept; a phase stopped midway is then restored from its backup).
            report = average(est) or report
        done = epochs_done(args.checkpoint_dir, name) if args.resume else 0
        keep_best = name == "phase1" and args.phase1_keep == "best"
        callbacks = phase_callbacks(name, args.checkpoint_dir, progress, done, keep_best)
        if done:
            print(f"{name}: resuming after epoch {done} of {settings['epochs']}", flush=True)
        # warm_start: later phases continue the network with a new cosine schedule
        # (phase 3 also with new augmentation layers, the weights carried over).
        est.set_params(callbacks=callbacks, warm_start=name != "phase1",
                       **dict({"augment": recipe["augment"]}, **settings))
        est.fit(X, y[tasks], validation_data=(Xv, yv[tasks]), soft_targets=soft or None)
        seconds = sum(progress["epoch_seconds"][name])
        losses = read_log(os.path.join(args.checkpoint_dir, f"{name}_log.csv"))["val_loss"]
        losses = losses.to_numpy()[-settings["epochs"]:]
        est.model_.load_weights(os.path.join(args.checkpoint_dir, f"{name}.weights.h5"))
        est._network_changed()
        report = validate(est, val)  # the model as it stands after this phase
        kept = int(np.argmin(losses)) + 1 if keep_best else len(losses)
        summary[name] = dict(settings, train_seconds=round(seconds, 1), kept_epoch=kept,
                             val_loss_kept=round(float(losses[kept - 1]), 4),
                             validation_summary=validation_summary(report))
        print(f"{name}: {settings['epochs']} epochs in {seconds / 60:.1f} min; kept epoch "
              f"{kept} (val_loss {losses[kept - 1]:.4f}): "
              + ", ".join(f"{k} {v:.3f}" for k, v in summary[name]["validation_summary"].items()),
              flush=True)
        ends[name] = layer_weights(est.model_)
        # The phase's model, then its record: a run stopped between them redoes the
        # phase; the backup goes last.
        est.save(os.path.join(args.checkpoint_dir, f"{name}.mtlfaces"))
        progress["phases"][name] = summary[name]
        dump_json(progress_path, progress)
        shutil.rmtree(os.path.join(args.checkpoint_dir, f"{name}_backup"), ignore_errors=True)
    if report is None:  # every phase was finished by the stopped run
        report = validate(est, val)
    train_s = sum(summary[name]["train_seconds"] for name, _ in phases)
    history = {}  # every epoch of the phases run, from their logs (resumed ones whole)
    for name, _ in phases:
        log = read_log(os.path.join(args.checkpoint_dir, f"{name}_log.csv"))
        for column in log.columns.drop("epoch"):
            history.setdefault(column, []).extend(log[column].astype(float).tolist())
    # Without phase 6: the average of the AVERAGE phases' ends is the saved model.
    if "average" not in summary:
        report = average(est) or report
    print_report(report)
    if not args.quick or args.out != parser.get_default("out"):
        est.save(args.out)
        print(f"\nsaved {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")
        if args.readout:  # the last step: the descriptor read-out mtlfaces predict adds
            import readout

            _, faces, features, _, _ = readout.utkface_descriptors(
                args.data_dir, QUICK_READOUT_FACES if args.quick else None, args.cache_dir)
            path = os.path.join(os.path.dirname(os.path.abspath(args.out)),
                                "descriptor_readout.json")
            print(f"saved {readout.fit_readout(features, faces).save(path)}")
    result = {"recipe": {k: v for k, v in recipe.items()}, "restart": restart,
              "phase3": phase3, "phase4": phase4, "phase5": phase5, "phase6": phase6,
              "phases": summary,
              "options": {k: getattr(args, k) for k in RECORDED_OPTIONS},
              "train_images": int(len(X)),
              "train_images_by_source": {str(k): int(v) for k, v in
                                         y["source"].value_counts().items()},
              "parameters": int(sum(np.prod(w.shape) for w in est.model_.weights)),
              "train_seconds": round(train_s, 1), "quick": args.quick,
              "trained_on": compute_device(), "keras_backend": keras.backend.backend(),
              "history": history, "validation": report,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    out = args.results if not args.quick else args.results.replace(".json", "_quick.json")
    dump_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
