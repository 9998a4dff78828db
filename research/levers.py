"""Do class weighting or label smoothing help the bundled model? Measured, by fine-tuning it.

    python research/levers.py [--data-dir ../shared/data] [--epochs 2] [--quick]

Retraining from scratch once per lever costs over an hour each on 2 CPU cores, so this
measures each lever at the end of training instead: every arm starts from the bundled
model and trains ``--epochs`` more epochs on the recipe's training set (same data, seed,
batch and augmentation; a cosine schedule from ``--learning-rate``), changing one thing:

- ``continue``: nothing (separates the effect of the extra epochs from the lever's);
- ``class weight``: emotion classes weighted "balanced" (Disgust ≈9×, Happy ≈0.6×);
- ``label smoothing``: 0.1 on every task.

Each arm is scored on the fixed validation splits (the recipe's). Reported: accuracy,
mean per-class ("macro") accuracy, and the two weakest emotions, Disgust and Fear.
Writes research/results/levers.json.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (DEFAULT_DATA, QUICK_LIMIT, ROOT, continued_labels, machine, table,  # noqa: E402
                     write_json)

ARMS = {
    "continue": {},
    "class weight": {"class_weight": {"emotion": "balanced"}},
    "label smoothing": {"label_smoothing": 0.1},
}


def summarize(report):
    """One row of headline numbers from a recipe-style validation report."""
    fer, utk = report["fer2013_publictest"]["emotion"], report["utkface"]
    return {"emotion": fer["accuracy"], "emotion macro": fer["macro_accuracy"],
            "Disgust": fer["per_class_accuracy"]["Disgust"],
            "Fear": fer["per_class_accuracy"]["Fear"],
            "gender": utk["gender"]["accuracy"], "age": utk["age"]["accuracy"],
            "age macro": utk["age"]["macro_accuracy"],
            "CK+": report["ckplus"]["emotion"]["accuracy"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--model", default=None, help="start from this model file "
                                                      "(default: the bundled model)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} images per dataset, 1 epoch: "
                             "checks the script runs")
    args = parser.parse_args(argv)

    import train_pretrained as recipe

    from mtlfaces import load_model, load_pretrained

    (X, y), val = recipe.load_splits(args.data_dir, recipe.RECIPE["image_size"],
                                     args.cache_dir, limit=QUICK_LIMIT if args.quick else None)
    y = y[["age", "gender", "emotion"]]
    epochs = 1 if args.quick else args.epochs

    def start():
        return load_model(args.model) if args.model else load_pretrained()

    rows = [dict(arm="bundled model as is", seconds=0.0,
                 **summarize(recipe.validate(start(), val)))]
    settings = {k: v for k, v in recipe.RECIPE.items() if k not in recipe.ARCHITECTURE}
    for arm, change in ARMS.items():
        est = start()
        est.set_params(**dict(settings, warm_start=True, epochs=epochs,
                              learning_rate=args.learning_rate, validation_fraction=0.0,
                              callbacks=None, **change))
        t = time.time()
        est.fit(X, continued_labels(est, y))  # other heads masked
        rows.append(dict(arm=arm, seconds=round(time.time() - t, 1),
                         **summarize(recipe.validate(est, val))))
        print(f"{arm}: {rows[-1]}", flush=True)
    columns = ["arm", "emotion", "emotion macro", "Disgust", "Fear", "gender", "age",
               "age macro", "CK+", "seconds"]
    table(rows, columns)
    write_json("levers", {"machine": machine(), "epochs": epochs,
                          "learning_rate": args.learning_rate, "train_images": int(len(X)),
                          "start": args.model or "bundled", "arms": ARMS, "rows": rows,
                          "quick": args.quick}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
