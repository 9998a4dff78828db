"""Folders of face crops: photo mode against crops mode on UTKFace's validation crops.

    python benchmarks/bench_crops.py [--quick] [--faces 1000] [--data ../shared/data]

A seeded random sample of the fixed UTKFace validation split (200×200 aligned crops, as
published) goes through ``mtlfaces.Analyzer`` three ways: photo mode as 0.3 ran it (detect
at upsample 0, no retry), photo mode now (a small image with no face is searched again at
upsample 1, then by dlib's CNN detector), and crops mode (``crops=True``: one answer per
image; landmarks, else the image as given, where no face is detected). Per mode: the
share of images answered, age
group and gender accuracy over all images (an image without an answer counts as wrong)
and over those answered, and seconds per image. The network alone answers (no read-out),
so the modes differ only in how faces are found. Writes ``benchmarks/results/crops.json``;
``--write-docs`` also writes the README's table (between its ``crops`` markers).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, ROOT, machine, publish, table  # noqa: E402

DOCS = os.path.join(ROOT, "README.md")  # the file whose table this script writes
MARKERS = ("<!-- crops:start -->", "<!-- crops:end -->")


def render(result):
    """The README's table of a result (``crops.json``)."""
    lines = ["| mode | images answered | age group right | gender right | s per image |",
             "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['mode']} | {r['answered']:.1%} | {r['age_all']:.1%} | "
                     f"{r['gender_all']:.1%} | {r['s_per_image']:.3f} |")
    lines += ["", f"{result['data']}; an image without an answer counts as wrong; 2 CPU "
              "cores; `python benchmarks/bench_crops.py --write-docs` writes this block."]
    return "\n".join(lines)


def validation_crops(data_dir, n, seed=0):
    """``n`` UTKFace validation crops (RGB uint8) and their labels, without loading the rest."""
    import cv2

    from mtlfaces.datasets._archives import _iter_members
    from mtlfaces.datasets.splits import hash_holdout
    from mtlfaces.datasets.utkface import parse_utkface_name
    from mtlfaces.tasks import age_to_group

    archive = os.path.join(data_dir, "UTKFace.tar.gz")
    names = []
    for name, _ in _iter_members(archive, lambda m: m.endswith(".jpg")):
        try:
            parse_utkface_name(name)
        except ValueError:
            continue
        names.append(name)
    held = np.array(names)[hash_holdout([os.path.basename(m) for m in names])]
    pick = set(np.random.RandomState(seed).permutation(held)[:n])
    images, ages, genders = [], [], []
    for name, data in _iter_members(archive, lambda m: m in pick):
        info = parse_utkface_name(name)
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        ages.append(age_to_group(info["age_years"]))
        genders.append(info["gender"])
    return images, np.array(ages, dtype=object), np.array(genders, dtype=object)


def run_mode(analyzer, images, ages, genders, retry=True):
    from mtlfaces import pipeline

    saved = pipeline.RETRY_SIDE
    pipeline.RETRY_SIDE = saved if retry else 0
    try:
        start = time.perf_counter()
        answers = []
        for img in images:
            faces = analyzer.image(img).faces
            answers.append(faces[0] if faces else None)
        seconds = time.perf_counter() - start
    finally:
        pipeline.RETRY_SIDE = saved
    found = np.array([a is not None for a in answers])
    age = np.array([a is not None and a.labels["age"] == t for a, t in zip(answers, ages)])
    gender = np.array([a is not None and a.labels["gender"] == t
                       for a, t in zip(answers, genders)])
    located = [a.located for a in answers if a is not None]
    return {"answered": float(found.mean()),
            "age_all": float(age.mean()), "gender_all": float(gender.mean()),
            "age_answered": float(age[found].mean()) if found.any() else None,
            "gender_answered": float(gender[found].mean()) if found.any() else None,
            "by_landmarks": located.count("landmarks"), "as_given": located.count("whole"),
            "s_per_image": seconds / len(images)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 faces")
    parser.add_argument("--faces", type=int, default=1000)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--write-docs", action="store_true",
                        help="also write the README's table (not with --quick)")
    args = parser.parse_args(argv)
    from mtlfaces import Analyzer

    n = 100 if args.quick else args.faces
    images, ages, genders = validation_crops(args.data, n)
    rows = []
    for mode, crops, retry in (("photo, no retry (0.3)", False, False),
                               ("photo (retries: upsample 1, CNN)", False, True),
                               ("crops", True, True)):
        analyzer = Analyzer(readout=False, crops=crops)
        rows.append({"mode": mode, "faces": len(images),
                     **run_mode(analyzer, images, ages, genders, retry)})
        print(f"{mode}: done", flush=True)
    table(rows, ["mode", "faces", "answered", "age_all", "gender_all", "age_answered",
                 "gender_answered", "by_landmarks", "as_given", "s_per_image"])
    result = {"machine": machine(), "data": "UTKFace validation split, "
              f"{len(images)} random crops (seed 0), network alone", "rows": rows}
    publish("crops", result, args.quick, args.write_docs, [(DOCS, MARKERS, render)])


if __name__ == "__main__":
    main()
