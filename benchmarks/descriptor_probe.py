"""Would dlib's face descriptor do better on age and gender than the bundled network?

    python benchmarks/descriptor_probe.py [--data-dir ../shared/data] [--limit 8000]

dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, installed
with ``face_recognition_models``; trained for identity on about 3 million faces) turns a
face into 128 numbers. A linear classifier on them (logistic regression, standardised
features, ``C`` in 0.1 / 1 / 10) is trained on the UTKFace faces outside the recipe's
validation part and scored on the faces inside it, beside the bundled model on the same
faces. If such features were much better, a network could learn from them (as a teacher);
if not, the trunk is not what limits age and gender. Faces: a seeded random ``--limit``
of UTKFace at 200×200 in colour; each face's landmarks from dlib's detector (the largest
box; a centred box where it finds none) and 5-point predictor. About 0.1 s per face on
one core. Writes benchmarks/results/descriptor_probe.json.
"""

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA, machine, table, write_json  # noqa: E402

TASKS = ("gender", "age")
CS = (0.1, 1.0, 10.0)


def descriptors(images):
    """``(n, 128)`` dlib face descriptors of 200×200 RGB face crops, and how many faces
    dlib's detector found (the others get a centred box)."""
    import dlib
    import face_recognition_models as models

    from mtlfaces.faces import _model  # the cropper's detector and 5-point predictor

    detector, landmarks = _model("hog"), _model("landmarks5")
    network = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    out, found = np.zeros((len(images), 128), np.float32), 0
    for i, image in enumerate(images):
        boxes = detector(image, 0)
        found += len(boxes) > 0
        h, w = image.shape[:2]
        box = (max(boxes, key=lambda b: b.area()) if len(boxes)
               else dlib.rectangle(w // 8, h // 8, w - w // 8, h - h // 8))
        out[i] = np.asarray(network.compute_face_descriptor(image, landmarks(image, box)))
    return out, found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=8000,
                        help="UTKFace faces used (a seeded random subset; default 8000)")
    parser.add_argument("--quick", action="store_true", help="400 faces: checks the script runs")
    args = parser.parse_args(argv)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mtlfaces import datasets as D
    from mtlfaces import load_pretrained

    limit = 400 if args.quick else args.limit
    X, y = D.load_utkface(os.path.join(args.data_dir, "UTKFace.tar.gz"), image_size=200,
                          grayscale=False, limit=limit, random_state=0)
    val = D.validation_mask(y)
    t = time.time()
    features, found = descriptors(X)
    seconds = time.time() - t
    bundled = load_pretrained()
    predicted = bundled.predict(X[val])
    rows = []
    for task in TASKS:
        labels = y[task].astype(str).to_numpy()
        row = {"task": task, "bundled model": float(np.mean(
            predicted[:, bundled.tasks_.index(task)] == labels[val]))}
        for C in CS:
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
            probe.fit(features[~val], labels[~val])
            row[f"descriptor C={C:g}"] = float(np.mean(probe.predict(features[val]) == labels[val]))
        rows.append(row)
    table(rows, list(rows[0]))
    write_json("descriptor_probe", {
        "machine": machine(), "faces": int(len(X)), "train_faces": int((~val).sum()),
        "validation_faces": int(val.sum()), "detected": int(found),
        "seconds_per_face": round(seconds / len(X), 3), "rows": rows}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
