"""Does a larger or colour input help age group and gender? 48 vs 64 pixels, gray vs colour.

    python research/input_study.py [--data-dir ../shared/data] [--epochs 5] [--quick]

The bundled model sees 48×48 grayscale faces because FER2013 is 48×48 grayscale; UTKFace's
faces are 200×200 colour. Before spending a from-scratch training of the full recipe (over
three hours on 2 CPU cores) on another input, this trains the bundled architecture
(RECIPE's trunk and heads, bf16, default augmentation, cosine schedule from 1e-3, seed
2026) from scratch on the UTKFace training part only (age group and gender), once per
input, for the same few epochs, and scores each on the fixed UTKFace hold-out. A short
budget compares how fast each input learns, not where it ends: read the differences, not
the absolute accuracies (the bundled model reaches 71 % / 93 % after 88 epochs on all
three datasets). Also reported: training seconds per epoch and inference faces/s (the
hold-out classified in one ``predict`` call, flip averaging on; the network's first call,
so its one-time tracing is included: research/speed.py measures throughput properly).
Writes research/results/input_study.json.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _common import DEFAULT_DATA, ROOT, machine, table, write_json  # noqa: E402

INPUTS = [(48, True), (64, True), (48, False), (64, False)]  # (side, grayscale)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="1,500 faces, 1 epoch, 32 and 40 pixels: checks the script runs")
    args = parser.parse_args(argv)

    import train_pretrained as recipe

    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.datasets import load_utkface, validation_mask

    epochs = 1 if args.quick else args.epochs
    inputs = [(32, True), (40, False)] if args.quick else INPUTS
    settings = {k: v for k, v in recipe.RECIPE.items()
                if k not in ("image_size", "grayscale", "augment", "epochs", "verbose")}
    rows = []
    for side, gray in inputs:
        X, y = load_utkface(os.path.join(args.data_dir, "UTKFace.tar.gz"), image_size=side,
                            grayscale=gray, limit=1500 if args.quick else None,
                            random_state=0, cache_dir=args.cache_dir)
        val = validation_mask(y)
        est = MultiTaskFaceClassifier(tasks=("age", "gender"), image_size=side,
                                      grayscale=gray, epochs=epochs, augment=True,
                                      verbose=0, **settings)
        t = time.time()
        est.fit(X[~val], y.loc[~val, ["age", "gender"]])
        train_s = time.time() - t
        t = time.time()
        predicted = est.predict(X[val])
        faces_per_s = val.sum() / (time.time() - t)
        truth = y.loc[val, ["age", "gender"]].to_numpy()
        rows.append(dict(input=f"{side}×{side} {'gray' if gray else 'colour'}",
                         age=float(np.mean(predicted[:, 0] == truth[:, 0])),
                         gender=float(np.mean(predicted[:, 1] == truth[:, 1])),
                         s_per_epoch=round(train_s / epochs, 1),
                         faces_per_s=round(float(faces_per_s)),
                         parameters=int(est.model_.count_params())))
        print(rows[-1], flush=True)
    table(rows, ["input", "age", "gender", "s_per_epoch", "faces_per_s", "parameters"])
    write_json("input_study", {"machine": machine(), "epochs": epochs,
                               "train_faces": int((~val).sum()),
                               "validation_faces": int(val.sum()), "rows": rows},
               args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
