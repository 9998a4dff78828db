"""Gender on LFW photos through the photo pipeline: a cross-dataset check (issue #32).

    python benchmarks/bench_lfw_gender.py [--data DIR] [--model FILE] [--name NAME] [--quick]

The 1,502 photos of ``lfw-gender.zip`` (350×350 grayscale, one person centred, others may
be in the frame; 751 women, 751 men) go through :func:`mtlfaces.analyze` as a user's photos
would: detection, alignment, the network and, where it is on, the descriptor read-out. A
photo's answer is that of the face whose box centre is nearest the photo's centre; a photo
where no face is found counts as wrong. Reported with the read-out off and on: accuracy,
per gender, the share of photos with a face found, accuracy on those, seconds.

LFW is validation only here: nothing is ever trained on it. Writes
``benchmarks/results/lfw_gender.json`` (``lfw_gender_NAME.json`` with ``--name``, for a model
other than the bundled one).
"""

import argparse
import io
import os
import sys
import time
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, machine, table, write_json  # noqa: E402

ARCHIVE = "lfw-gender.zip"
QUICK_PHOTOS = 40


def read_photos(data_dir, limit=None):
    """``(names, RGB arrays, genders)`` of the archive's labelled photos (sorted names; with
    ``limit``, that many, alternating women and men)."""
    import pandas as pd
    from PIL import Image

    path = os.path.join(data_dir, ARCHIVE)
    if not os.path.exists(path):
        raise SystemExit(f"{path}: not there; give --data DIR holding {ARCHIVE}")
    with zipfile.ZipFile(path) as zf:
        labels = pd.read_csv(io.BytesIO(zf.read("lfw-gender/labels.csv"))).sort_values("file")
        if limit:
            women = labels[labels["gender"] == "Female"].head(limit // 2)
            men = labels[labels["gender"] == "Male"].head(limit - len(women))
            labels = pd.concat([women, men]).sort_values("file")
        images = [np.asarray(Image.open(io.BytesIO(zf.read(f"lfw-gender/{f}"))).convert("RGB"))
                  for f in labels["file"]]
    return labels["file"].tolist(), images, labels["gender"].tolist()


def photo_index(record):
    """The position in the list given to ``analyze`` of the photo a record is of
    (its ``source`` reads ``array[i]``)."""
    return int(record["source"].split("[")[1].rstrip("]"))


def central_answers(records, names, shapes):
    """Per photo, the gender of the face nearest its centre (None where none was found)."""
    best = {}
    for r in records:
        if r.get("status", "ok") != "ok":
            continue
        i = photo_index(r)
        h, w = shapes[i]
        cx, cy = (r["left"] + r["right"]) / 2, (r["top"] + r["bottom"]) / 2
        distance = np.hypot(cx - w / 2, cy - h / 2)
        if i not in best or distance < best[i][0]:
            best[i] = (distance, r["gender"])
    return [best[i][1] if i in best else None for i in range(len(names))]


def score(answers, truth):
    answers, truth = np.array(answers, dtype=object), np.array(truth, dtype=object)
    found = answers != None  # noqa: E711  (object array)
    right = answers == truth
    return {"photos": int(len(truth)), "accuracy": float(right.mean()),
            "accuracy_se": float(np.sqrt(right.mean() * (1 - right.mean()) / len(truth))),
            "face_found": float(found.mean()),
            "accuracy_when_found": float(right[found].mean()) if found.any() else None,
            "by_gender": {g: float(right[truth == g].mean()) for g in sorted(set(truth))}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="a model file (default: the bundled)")
    parser.add_argument("--name", default=None,
                        help="results go to lfw_gender_NAME.json (for another model)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_PHOTOS} photos: checks the script runs")
    args = parser.parse_args(argv)
    import mtlfaces

    names, images, truth = read_photos(args.data, QUICK_PHOTOS if args.quick else None)
    shapes = [im.shape[:2] for im in images]
    model = mtlfaces.load_model(args.model) if args.model else mtlfaces.load_pretrained()
    rows = []
    for readout in (False, True):
        t0 = time.time()
        records = mtlfaces.analyze(images, model, readout=readout)
        seconds = time.time() - t0
        rows.append({"read-out": "on" if readout else "off", **score(
            central_answers(records, names, shapes), truth), "seconds": round(seconds, 1)})
        print(rows[-1], flush=True)
    shown = [{**{k: v for k, v in r.items() if k != "by_gender"},
              **{f"{g} accuracy": v for g, v in r["by_gender"].items()}} for r in rows]
    table(shown, list(shown[0]))
    write_json("lfw_gender" + (f"_{args.name}" if args.name else ""),
               {"machine": machine(), "model": args.model or "bundled",
                "photos": len(names), "rows": rows}, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
