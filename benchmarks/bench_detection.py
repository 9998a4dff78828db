"""The face detector's threshold: faces found on LFW against false detections on face-free images.

    python benchmarks/bench_detection.py [--data DIR] [--quick]

mtlfaces keeps a dlib HOG detection when its score is at least ``threshold`` (0.2 by
default; dlib's own default is 0), and searches a still image of at most 512 pixels a side
where it found none once more at upsample 1 (the retry), and, if HOG still finds none, once
with dlib's CNN detector. A lower threshold finds more faces and lets more false ones
through; this measures both sides, for each POLICY: a threshold for the first search and one
for the retry, under which the retry keeps only its best detection (the library: 0.2 and
0.2 − RETRY_THRESHOLD_DROP); and the library's policy with the CNN's search after it
(``cnn``), which the library does, with the seconds that search took per image it ran on.

- **LFW** (``lfw-gender.zip``, 1,502 photos of 350×350 with one person centred, validation
  only): the share of photos where a face is found, the faces kept per photo, and gender
  through the photo pipeline as ``bench_lfw_gender.py`` scores it (a photo's answer is the
  face nearest its centre; a photo with no face found counts as wrong), read-out off and on.
- **Face-free images**: the photos and scans that scikit-image and scikit-learn install
  with themselves and that hold no human face (a cat, a coffee cup, coins, a rocket, a
  motorcycle, textures, micrographs, text: FACE_FREE), each as PNG and as JPEG at quality 95
  (the example's mission-patch false detection appears in the JPEG). Every detection there
  is false: counted under each policy as the pipeline would keep it (the retry included),
  and also at upsample 1 on every image (``mtlfaces predict --upsample 1``). The CNN
  searches each small one once at the library's threshold. The astronaut
  and the cameraman have one face each; a further detection on them is false too.

Every image is searched once at upsample 0 and once at upsample 1, at the lowest threshold,
and the detections are filtered by score: dlib keeps the same boxes at a higher threshold
(its overlap suppression keeps the higher-scoring box; tested). Writes
``benchmarks/results/detection.json``.
"""

import argparse
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, machine, table, write_json  # noqa: E402

from mtlfaces._defaults import DEFAULT_THRESHOLD, RETRY_THRESHOLD_DROP  # noqa: E402

THRESHOLDS = (DEFAULT_THRESHOLD, 0.1, 0.0, -0.1, -0.2, -0.3, -0.5)
#: (first search, retry at upsample 1): one threshold for both, and the library's default
#: for the first search with a lower one for the retry only.
POLICIES = ([(t, t) for t in THRESHOLDS]
            + [(DEFAULT_THRESHOLD, t) for t in THRESHOLDS if t < DEFAULT_THRESHOLD])
#: What the library does (``mtlfaces.pipeline.FaceAnalyzer``): marked in the results.
LIBRARY_POLICY = (DEFAULT_THRESHOLD, round(DEFAULT_THRESHOLD - RETRY_THRESHOLD_DROP, 6))
#: scikit-image's installed images without a human face (``skimage.data.NAME()``).
FACE_FREE = ("brick", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
             "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
             "microaneurysms", "moon", "page", "retina", "rocket", "shepp_logan_phantom",
             "text", "checkerboard")
#: scikit-image's images with exactly one face.
ONE_FACE = ("astronaut", "camera")


def installed_images():
    """``{name: (RGB uint8 image, faces in it)}``: FACE_FREE and ONE_FACE from scikit-image,
    the motorcycle pair, and scikit-learn's two sample photos (none has a face)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    from mtlfaces.images import as_rgb_uint8

    out = {}
    for name in FACE_FREE + ONE_FACE:
        out[name] = (as_rgb_uint8(getattr(data, name)()), int(name in ONE_FACE))
    left, right, _ = data.stereo_motorcycle()
    out["motorcycle_left"], out["motorcycle_right"] = (left, 0), (right, 0)
    sample = load_sample_images()
    for fname, image in zip(sample.filenames, sample.images):
        out[os.path.splitext(os.path.basename(fname))[0]] = (image, 0)
    return out


def as_jpeg(image, quality=95):
    """``image`` after a round trip through JPEG at ``quality``."""
    from PIL import Image

    from mtlfaces.images import decode_bytes

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return decode_bytes(buf.getvalue(), "jpeg")


def scan(images, lowest):
    """Per image and encoding: every detection score at upsample 0 and 1 (lowest threshold)."""
    from mtlfaces.faces import detect_faces

    rows = []
    for name, (image, faces) in images.items():
        for encoding, pixels in (("png", image), ("jpeg", as_jpeg(image))):
            scores = {u: sorted((round(f.score, 3) for f in detect_faces(
                pixels, upsample=u, threshold=lowest, crop_size=None)), reverse=True)
                for u in (0, 1)}
            rows.append(dict(image=name, encoding=encoding, faces=faces,
                             side=int(max(pixels.shape[:2])), pixels=int(pixels[..., 0].size),
                             upsample0=scores[0], upsample1=scores[1]))
    return rows


def cnn_scan(rows, images):
    """Each small scan row (the retry's size) gains ``cnn``: the scores of the CNN
    detector's faces at the library's threshold, and ``cnn_seconds``."""
    from mtlfaces.faces import detect_faces
    from mtlfaces.pipeline import RETRY_SIDE

    for r in rows:
        if r["side"] <= RETRY_SIDE:
            image = images[r["image"]][0]
            pixels = image if r["encoding"] == "png" else as_jpeg(image)
            t0 = time.time()
            r["cnn"] = [round(f.score, 3) for f in detect_faces(
                pixels, detector="cnn", threshold=DEFAULT_THRESHOLD, crop_size=None)]
            r["cnn_seconds"] = round(time.time() - t0, 3)
    return rows


def kept(first, retry, eligible, policy):
    """What the pipeline keeps of a photo's detections (scores or records with one) under
    ``policy`` = (threshold, retry threshold): the first search's at its threshold, else,
    for a small still image, the retry's at that threshold, else the retry's best one if it
    reaches the retry threshold (``FaceAnalyzer._detect``)."""
    t0, t1 = policy
    out = [d for d in first if _score(d) >= t0]
    if not out and eligible:
        out = ([d for d in retry if _score(d) >= t0]
               or sorted((d for d in retry if _score(d) >= t1), key=_score, reverse=True)[:1])
    return out


def _score(d):
    return d["detector_score"] if isinstance(d, dict) else d


def by_photo(records, n):
    """The ok records of ``analyze`` on ``n`` photos, grouped by photo."""
    import bench_lfw_gender as lfw

    out = [[] for _ in range(n)]
    for r in records:
        if r.get("status", "ok") == "ok":
            out[lfw.photo_index(r)].append(r)
    return out


def renumbered(records, photos):
    """``{photo index: its ok records}`` of ``analyze`` run on a subset, ``photos`` (the
    indices of the subset's photos in the whole list), each record's ``source`` renamed to
    the photo's place in the whole list."""
    found = by_photo(records, len(photos))  # the records name their place in the subset
    return {i: [dict(r, source=f"array[{i}]") for r in found[k]] for k, i in enumerate(photos)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true",
                        help="40 LFW photos, read-out off, 4 installed images: checks it runs")
    args = parser.parse_args(argv)
    import bench_lfw_gender as lfw

    import mtlfaces
    from mtlfaces import pipeline

    lowest = min(THRESHOLDS)
    images = installed_images()
    if args.quick:
        images = {k: images[k] for k in ("astronaut", "coffee", "chelsea", "china")}
    t0 = time.time()
    scans = scan(images, lowest)
    scan_seconds = time.time() - t0
    cnn_scan(scans, images)
    names, photos, truth = lfw.read_photos(args.data, lfw.QUICK_PHOTOS if args.quick else None)
    shapes = [p.shape[:2] for p in photos]
    model = mtlfaces.load_pretrained()
    runs, seconds = {}, {}
    retry_side = pipeline.RETRY_SIDE
    for readout in ((False,) if args.quick else (False, True)):
        for upsample in (0, 1):
            pipeline.RETRY_SIDE = 0  # each search on its own; the policies redo the retry
            try:
                t0 = time.time()
                records = mtlfaces.analyze(photos, model, readout=readout, upsample=upsample,
                                           threshold=lowest)
                seconds[f"upsample{upsample}_readout_{'on' if readout else 'off'}"] = round(
                    time.time() - t0, 1)
            finally:
                pipeline.RETRY_SIDE = retry_side
            runs[readout, upsample] = by_photo(records, len(photos))
    face_free = [r for r in scans if r["faces"] == 0]
    rows = []
    # The CNN's search, on the LFW photos where the library's HOG searches keep nothing.
    cnn_runs, cnn_seconds = {}, []
    for readout in ((False,) if args.quick else (False, True)):
        bare = [i for i in range(len(photos)) if max(shapes[i]) <= retry_side and not kept(
            runs[readout, 0][i], runs[readout, 1][i], True, LIBRARY_POLICY)]
        pipeline.RETRY_SIDE = 0
        try:
            t0 = time.time()
            records = mtlfaces.analyze([photos[i] for i in bare], model, readout=readout,
                                       detector="cnn") if bare else []
            cnn_seconds.append((time.time() - t0) / max(1, len(bare)))
        finally:
            pipeline.RETRY_SIDE = retry_side
        cnn_runs[readout] = renumbered(records, bare)
    seconds["cnn_per_lfw_photo_searched"] = round(float(np.mean(cnn_seconds)), 2)
    cnn_lfw = {"searched": len(cnn_runs[False]),
               "found": int(sum(bool(f) for f in cnn_runs[False].values()))}
    for policy, cnn in [(p, False) for p in POLICIES] + [(LIBRARY_POLICY, True)]:
        row = {"threshold": policy[0], "retry_threshold": policy[1], "cnn": cnn,
               "library": cnn}
        for readout in ((False,) if args.quick else (False, True)):
            faces = [kept(runs[readout, 0][i], runs[readout, 1][i],
                          max(shapes[i]) <= retry_side, policy) for i in range(len(photos))]
            if cnn:
                faces = [f or cnn_runs[readout].get(i, []) for i, f in enumerate(faces)]
            s = lfw.score(lfw.central_answers([r for f in faces for r in f], names, shapes),
                          truth)
            on = "on" if readout else "off"
            row["lfw_face_found"] = s["face_found"]
            row["lfw_faces_per_photo"] = round(float(np.mean([len(f) for f in faces])), 3)
            row[f"lfw_gender_readout_{on}"] = s["accuracy"]
            row[f"lfw_gender_when_found_readout_{on}"] = s["accuracy_when_found"]
        false = [max(0, len(kept(r["upsample0"], r["upsample1"], r["side"] <= retry_side,
                                 policy) or (r.get("cnn", []) if cnn else [])) - r["faces"])
                 for r in scans]
        row["false_detections"] = int(sum(f for f, r in zip(false, scans) if r["faces"] == 0))
        row["face_free_images_with_one"] = int(sum(
            f > 0 for f, r in zip(false, scans) if r["faces"] == 0))
        row["extra_on_one_face_images"] = int(sum(
            f for f, r in zip(false, scans) if r["faces"] == 1))
        # mtlfaces predict --upsample 1: every image searched at upsample 1 (no retry).
        row["false_detections_upsample1"] = int(sum(
            sum(s >= policy[0] for s in r["upsample1"]) for r in face_free))
        rows.append(row)
        print(row, flush=True)
    table(rows, list(rows[0]))
    write_json("detection", {
        "machine": machine(), "lfw_photos": len(names), "retry_side": retry_side,
        "face_free_images": sorted({r["image"] for r in face_free}),
        "face_free_scans": len(face_free), "megapixels": round(
            sum(r["pixels"] for r in face_free) / 1e6, 1),
        "scan_seconds": round(scan_seconds, 1), "cnn_seconds_per_small_image": round(
            float(np.mean([r["cnn_seconds"] for r in scans if "cnn" in r])), 2),
        "lfw_seconds": seconds, "cnn_lfw_photos": cnn_lfw, "rows": rows,
        "scans": [r for r in scans if r["upsample0"] or r["upsample1"] or r.get("cnn")]},
        quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
