"""Input size, colour and width for age group, gender and age in years, trained far longer
than research/input_study.py could on the CPU (issue #32's fourth lever; a GPU run).

    python research/input_width_study.py --pack utk64.npz          # here, once (~40 MB)
    KERAS_BACKEND=jax python research/input_width_study.py --from-pack utk64.npz --epochs 40

``research/input_study.py`` compared 48/64 pixels and gray/colour at 5 epochs on two CPU
cores: no network was near convergence, so it settled nothing. This study trains each arm
from scratch on the UTKFace training part (16,284 faces; age group, gender and the
``age_years`` head, as the bundled model has them: RECIPE's settings, PHASE3's
augmentation, the years as a normal of 3 years) for the same number of epochs, and scores
it on the fixed UTKFace hold-out (2,742 faces): age group and gender accuracy (with their
standard errors), the years' mean absolute error. An arm is an input (side, gray or colour)
and a trunk width (RECIPE's filters times a factor).

Carrying the data: a machine without the archive (the GPU machine takes 64 MiB with the
working tree) gets a pack: every UTKFace face at 64×64 colour as JPEG (quality 90, about
39 MB), its labels and whether it is in the hold-out. Every arm reads the same 64×64 colour
faces and the estimator makes its own input from them (gray by its luma rule, 48 pixels
by its resize), so the arms differ only in what they name. The pack's JPEG step costs every
arm alike; the 48×48 gray arm is therefore the bundled input made from a 64-pixel JPEG, not
from the 200-pixel original. ``--time-limit`` stops starting arms (and seeds) past that
many seconds; the JSON records which ran. Writes research/results/input_width_study.json.
"""

import argparse
import io
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _common import DEFAULT_DATA, ROOT, machine, table, write_json  # noqa: E402

PACK_SIDE = 64
PACK_QUALITY = 90
#: (name, image_size, grayscale, width factor), in the order they run.
ARMS = [
    ("48 gray", 48, True, 1.0),
    ("64 gray", 64, True, 1.0),
    ("64 colour", 64, False, 1.0),
    ("48 gray, 1.5× wide", 48, True, 1.5),
    ("64 gray, 1.5× wide", 64, True, 1.5),
    ("48 colour", 48, False, 1.0),
]
QUICK_ARMS = [("32 gray", 32, True, 1.0), ("32 colour, 1.5× wide", 32, False, 1.5)]
TASKS = ("age", "gender", "age_years")


def write_pack(path, data_dir, cache_dir, limit=None):
    """Every UTKFace face at 64×64 colour as JPEG, with labels and the hold-out mask."""
    from PIL import Image

    from mtlfaces.datasets import load_utkface, validation_mask

    X, y = load_utkface(os.path.join(data_dir, "UTKFace.tar.gz"), image_size=PACK_SIDE,
                        grayscale=False, cache_dir=cache_dir, limit=limit, random_state=0)
    blobs = []
    for face in X:
        buf = io.BytesIO()
        Image.fromarray(face).save(buf, "JPEG", quality=PACK_QUALITY)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    ends = np.cumsum([len(b) for b in blobs])
    np.savez(path, jpeg=np.concatenate(blobs), ends=ends,
             age=y["age"].to_numpy(dtype=str), gender=y["gender"].to_numpy(dtype=str),
             age_years=y["age_years"].to_numpy(dtype=np.int64),
             validation=np.asarray(validation_mask(y), dtype=bool))
    print(f"wrote {path}: {len(X)} faces, {os.path.getsize(path) / 1e6:.1f} MB", flush=True)


def read_pack(path):
    """``(X, y, validation)`` from :func:`write_pack`'s file (no pickle)."""
    import pandas as pd

    from mtlfaces.images import decode_bytes

    with np.load(path, allow_pickle=False) as pack:
        jpeg, ends = pack["jpeg"], pack["ends"]
        starts = np.concatenate([[0], ends[:-1]])
        X = np.stack([decode_bytes(jpeg[a:b], f"{path}[{i}]")
                      for i, (a, b) in enumerate(zip(starts, ends))])
        y = pd.DataFrame({"age": pack["age"].astype(object),
                          "gender": pack["gender"].astype(object),
                          "age_years": pack["age_years"].astype(object)})
        return X, y, pack["validation"]


def _clock(arm_limit):
    """A Keras callback that prints each epoch's time and loss, keeps them in ``EPOCHS`` (the
    estimator deep-copies its callbacks), and stops the fit past ``arm_limit`` seconds."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.time()
            EPOCHS.clear()

        def on_epoch_end(self, epoch, logs=None):
            elapsed = time.time() - self.start
            EPOCHS.append(dict(epoch=epoch + 1, s=round(elapsed, 1),
                               loss=round(float(logs.get("loss", np.nan)), 4)))
            print(f"  epoch {epoch + 1}: {elapsed:.1f} s, loss {EPOCHS[-1]['loss']}", flush=True)
            if arm_limit and elapsed > arm_limit:
                self.model.stop_training = True

    return Clock()


EPOCHS = []


def _steady(curve):
    """Seconds per epoch after the first (which holds the step's compilation)."""
    if len(curve) < 2:
        return None
    return round((curve[-1]["s"] - curve[0]["s"]) / (len(curve) - 1), 2)


def run_arm(arm, X, y, val, epochs, seed, settings, arm_limit=None):
    """Train one arm from scratch and score it on the hold-out (an arm stopped by
    ``arm_limit`` says how many epochs it ran: compare it with nothing)."""
    import train_pretrained as recipe

    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.evaluation import evaluate

    name, side, gray, width = arm
    filters = tuple(int(round(f * width)) for f in settings["filters"])
    train, years = recipe.years_targets(y[~val].reset_index(drop=True))
    soft = {recipe.YEARS_TASK: years}
    est = MultiTaskFaceClassifier(tasks=TASKS, **dict(
        settings, image_size=side, grayscale=gray, filters=filters, epochs=epochs,
        random_state=seed, verbose=0, callbacks=[_clock(arm_limit)]))
    t = time.time()
    est.fit(X[~val], train, soft_targets=soft)
    train_s = time.time() - t
    t = time.time()
    report = evaluate(est, X[val], y[val].reset_index(drop=True), group_columns=())
    predict_s = time.time() - t
    n = int(val.sum())

    def se(p):
        return float(np.sqrt(p * (1 - p) / n))

    row = dict(arm=name, image_size=side, grayscale=gray, width=width, seed=seed,
               epochs_run=len(EPOCHS), first_epoch_s=EPOCHS[0]["s"] if EPOCHS else None,
               age=report["age"]["accuracy"], age_se=se(report["age"]["accuracy"]),
               gender=report["gender"]["accuracy"], gender_se=se(report["gender"]["accuracy"]),
               years_mae=report["age_years"]["mae"], years_mae_se=report["age_years"]["mae_se"],
               years_bias=report["age_years"]["bias"],
               final_train_loss=float(est.history_["loss"][-1]),
               train_s=round(train_s, 1), steady_s_per_epoch=_steady(EPOCHS),
               predict_s=round(predict_s, 2),
               parameters=int(est.model_.count_params()), curve=list(EPOCHS))
    print(row, flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--pack", metavar="FILE", help="write the carried pack and stop")
    parser.add_argument("--from-pack", metavar="FILE", help="read faces from a pack")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026],
                        help="each arm runs once per seed (all arms with the first seed, "
                             "then again with the next)")
    parser.add_argument("--arms", nargs="+", help="arm names to run (default: all)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="start no arm after this many seconds")
    parser.add_argument("--arm-limit", type=float, default=None,
                        help="stop an arm's training past this many seconds (it is marked)")
    parser.add_argument("--out", help="write the JSON here instead of research/results/")
    parser.add_argument("--quick", action="store_true",
                        help="1,500 faces, 1 epoch, 32 pixels: checks the script runs")
    args = parser.parse_args(argv)

    if args.pack:
        write_pack(args.pack, args.data_dir, args.cache_dir, 1500 if args.quick else None)
        return 0
    import train_pretrained as recipe

    started = time.time()
    if args.from_pack:
        X, y, val = read_pack(args.from_pack)
        if args.quick:
            keep = np.sort(np.random.default_rng(0).permutation(len(X))[:1500])
            X, y, val = X[keep], y.iloc[keep].reset_index(drop=True), val[keep]
    else:
        from mtlfaces.datasets import load_utkface, validation_mask

        X, y = load_utkface(os.path.join(args.data_dir, "UTKFace.tar.gz"), image_size=PACK_SIDE,
                            grayscale=False, cache_dir=args.cache_dir, random_state=0,
                            limit=1500 if args.quick else None)
        val = np.asarray(validation_mask(y), dtype=bool)
        y = y[["age", "gender", "age_years"]]
    print(f"{len(X)} faces, {int(val.sum())} held out, read in {time.time() - started:.1f} s",
          flush=True)
    import keras

    backend, device = keras.backend.backend(), recipe.compute_device()
    print(f"training on {device}", flush=True)
    settings = {k: v for k, v in recipe.RECIPE.items()
                if k not in ("image_size", "grayscale", "epochs", "verbose", "random_state")}
    settings["augment"] = dict(recipe.PHASE3["augment"])
    epochs = 1 if args.quick else args.epochs
    arms = QUICK_ARMS if args.quick else [a for a in ARMS if not args.arms or a[0] in args.arms]
    rows, skipped = [], []

    def save():
        payload = {"machine": machine(), "backend": backend, "device": device,
                   "epochs": epochs, "seeds": args.seeds, "pack": dict(
                       side=PACK_SIDE, jpeg_quality=PACK_QUALITY) if args.from_pack else None,
                   "train_faces": int((~val).sum()), "validation_faces": int(val.sum()),
                   "settings": {k: settings[k] for k in ("filters", "convs_per_block",
                                                         "dense_units", "batch_size",
                                                         "learning_rate", "augment")},
                   "rows": rows, "not_run": skipped, "wall_s": round(time.time() - started, 1)}
        if args.out:
            from common import dump_json

            dump_json(args.out, payload)
        else:
            write_json("input_width_study", payload, args.quick)

    for seed in args.seeds:
        for arm in arms:
            if args.time_limit and time.time() - started > args.time_limit:
                skipped.append(dict(arm=arm[0], seed=seed))
                continue
            rows.append(run_arm(arm, X, y, val, epochs, seed, settings, args.arm_limit))
            save()  # after each arm: a run stopped by its machine keeps what finished
    save()
    table(rows, ["arm", "seed", "epochs_run", "age", "gender", "years_mae", "steady_s_per_epoch",
                 "parameters"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
