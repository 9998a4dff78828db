"""Would dlib's face descriptor do better on age and gender than the bundled network?

    python research/descriptor_probe.py [--data-dir ../shared/data] [--limit 0] [--jobs 2]
        [--save-readout mtlfaces/models/descriptor_readout.json]

dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, installed
with ``face_recognition_models``; trained for identity on about 3 million faces) turns a
face into 128 numbers (:mod:`mtlfaces.descriptors`). Read-outs of them are trained on the
UTKFace faces outside the recipe's validation part and scored on the faces inside it,
beside the bundled model on the same faces (also for women and men apart, ``by_gender``):
logistic regressions on the standardised
descriptors (``C`` 0.1, 1, 10; :func:`fit_readout`, so the ``C=1`` column is the shipped
read-out's fit) and a perceptron (one hidden layer of 256, early stopping on a tenth of
the training faces, seed 0). If such features were much better, a network could learn
from them (as a teacher). Then each of two read-outs named beforehand (``MEAN_OF``)
averaged with the bundled model (probabilities, weight one half each, not tuned on the
validation faces): models trained on different data (identity on millions of faces;
UTKFace, FER2013, CK+) can err on different faces, which the ensembles of one line of
training did not.

Faces: all of UTKFace (``--limit N``: a seeded random N) at 200×200 in colour, described by
:func:`mtlfaces.descriptors.crop_descriptors` (about 0.1 s per face on one core, ``--jobs``
processes; kept in ``--cache-dir`` for the next run). ``--save-readout PATH`` also writes
the read-out ``mtlfaces predict`` uses (:class:`mtlfaces.descriptors.DescriptorReadout`,
``C=1``, fitted on the same training faces): the recipe's last step. Writes
research/results/descriptor_probe.json.
"""

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA, ROOT, machine, table, write_json  # noqa: E402
from readout import (DESCRIPTORS_VERSION, cached_descriptors, fit_readout,  # noqa: E402,F401
                     utkface_descriptors)

TASKS = ("gender", "age")
CS = (0.1, 1.0, 10.0)
MLP = dict(hidden_layer_sizes=(256,), alpha=1e-3, early_stopping=True,
           validation_fraction=0.1, max_iter=500, random_state=0)
MEAN_OF = ("descriptor C=1", "descriptor MLP")  # read-outs averaged with the bundled model


def validation_faces(data_dir, cache_dir=None, jobs=2, limit=None):
    """The UTKFace validation faces (the first ``limit`` of them, or all) at 200×200 in
    colour, their labels and their descriptors (kept in ``cache_dir``):
    ``X, y, features``."""
    from mtlfaces import datasets as D

    archive = os.path.join(data_dir, "UTKFace.tar.gz")
    X, y = D.load_utkface(archive, image_size=200, grayscale=False, random_state=0)
    val = np.flatnonzero(D.validation_mask(y))[:limit]
    X, y = X[val], y.iloc[val].reset_index(drop=True)
    stat = os.stat(archive)
    members = [p.split("::")[-1] for p in y["path"]]
    features = cached_descriptors(X, members, cache_dir, jobs,
                                  source=f"{stat.st_size} {stat.st_mtime_ns} validation")[0]
    return X, y, features


def with_readout_accuracy(est, X, y, features, readout=None):
    """Gender and age-group accuracy of ``est`` with the descriptor read-out averaged in
    (weights one half, as ``mtlfaces predict``), and of ``est`` alone, on faces ``X``:
    ``{"gender": ..., "age": ..., "gender alone": ..., "age alone": ...}``."""
    from mtlfaces.descriptors import load_pretrained_readout, mean_with
    from mtlfaces.tasks import classes_by_task

    readout = readout or load_pretrained_readout()
    classes = classes_by_task(est)
    alone = dict(zip(est.tasks_, est.predict_proba(X)))
    mixed = mean_with(alone, classes, readout.predict_proba(features), readout)
    out = {}
    for task in TASKS:
        truth = y[task].astype(str).to_numpy()
        names = np.asarray(classes[task]).astype(str)
        out[task] = float(np.mean(names[mixed[task].argmax(1)] == truth))
        out[f"{task} alone"] = float(np.mean(names[alone[task].argmax(1)] == truth))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0,
                        help="UTKFace faces used (a seeded random subset; default 0: all)")
    parser.add_argument("--jobs", type=int, default=2, help="processes computing descriptors")
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"),
                        help="where descriptors are kept between runs ('' for nowhere)")
    parser.add_argument("--save-readout", default=None, metavar="PATH",
                        help="also write the C=1 read-out of age and gender (JSON) here")
    parser.add_argument("--quick", action="store_true", help="400 faces: checks the script runs")
    args = parser.parse_args(argv)
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mtlfaces import datasets as D
    from mtlfaces import load_pretrained

    if args.limit < 0 or args.jobs < 1:
        parser.error(f"--limit {args.limit} --jobs {args.jobs}: expected a limit >= 0 "
                     "(0: all faces) and one job or more")
    limit = 400 if args.quick else (args.limit or None)
    X, y, features, found, per_face = utkface_descriptors(
        args.data_dir, limit, None if args.quick else args.cache_dir, args.jobs)
    val = D.validation_mask(y)
    # The logistic regressions are the recipe's fit_readout, DescriptorReadout as mtlfaces
    # predict loads it: the C=1 column is the shipped read-out's.
    linear = {C: fit_readout(features, y, C) for C in CS}
    if args.save_readout:
        print(f"wrote {linear[1.0].save(args.save_readout)}")
    bundled = load_pretrained()
    bundled_proba = bundled.predict_proba(X[val])
    rows = []
    by_gender = {}  # the bundled model and the shipped pair, for women and men apart
    sexes = y.loc[val, "gender"].astype(str).to_numpy()
    for task in TASKS:
        labels = y[task].astype(str).to_numpy()
        column = bundled.tasks_.index(task)
        classes = np.asarray(bundled.classes_[column]).astype(str)
        proba = {"bundled model": bundled_proba[column]}
        for C, readout in linear.items():
            order = [readout.classes_[task].index(c) for c in classes]  # the bundled model's
            proba[f"descriptor C={C:g}"] = readout.predict_proba(features[val])[task][:, order]
        mlp = make_pipeline(StandardScaler(), MLPClassifier(**MLP))
        mlp.fit(features[~val], labels[~val])
        order = [list(mlp.classes_).index(c) for c in classes]
        proba["descriptor MLP"] = mlp.predict_proba(features[val])[:, order]
        for name in MEAN_OF:
            proba[f"mean of bundled and {name}"] = (proba["bundled model"] + proba[name]) / 2
        right = {name: classes[p.argmax(1)] == labels[val] for name, p in proba.items()}
        rows.append({"task": task, **{name: float(np.mean(r)) for name, r in right.items()}})
        by_gender[task] = {
            name: {sex: float(np.mean(right[name][sexes == sex])) for sex in ("Female", "Male")}
            for name in ("bundled model", "mean of bundled and descriptor C=1")}
    table(rows, list(rows[0]))
    write_json("descriptor_probe", {
        "machine": machine(), "faces": int(len(X)), "train_faces": int((~val).sum()),
        "validation_faces": int(val.sum()), "detected": int(found),
        "seconds_per_face": round(per_face, 3), "mlp": MLP, "rows": rows,
        "by_gender": by_gender}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
