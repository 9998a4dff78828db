"""The face detector's threshold: faces found on LFW against false detections on face-free images.

    python benchmarks/bench_detection.py [--data DIR] [--quick]

mtlfaces keeps a dlib HOG detection when its score is at least ``threshold`` (0.2 by
default, dlib's own default is 0). A lower threshold finds more faces and lets more false
ones through; this measures both sides, for each threshold in THRESHOLDS:

- **LFW** (``lfw-gender.zip``, 1,502 photos with one person centred, validation only): the
  share of photos where a face is found and gender through the photo pipeline, as
  ``bench_lfw_gender.py`` scores it (a photo's answer is the face nearest its centre; a photo
  with no face found counts as wrong), with the descriptor read-out off and on.
- **Face-free images**: the photos and scans that scikit-image and scikit-learn install
  with themselves and that hold no human face (a cat, a coffee cup, coins, a rocket, a
  motorcycle, textures, micrographs, text: FACE_FREE), each also as a JPEG at quality 95
  (the example's mission-patch false detection appears in the JPEG), at ``upsample`` 0 (the
  default) and 1. Every detection there is false. The astronaut and the cameraman have one
  face each; any further detection on them is false too.

Each image is detected once at the lowest threshold and the detections filtered by score:
dlib's detector keeps the same boxes at a higher threshold (its overlap suppression keeps the
higher-scoring box). Writes ``benchmarks/results/detection.json``.
"""

import argparse
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, machine, table, write_json  # noqa: E402

THRESHOLDS = (0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.5)
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
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def false_detections(images, lowest):
    """Per image, encoding and upsample: the scores of the detections beyond its faces."""
    from mtlfaces.faces import detect_faces

    rows = []
    for name, (image, faces) in images.items():
        for encoding, pixels in (("png", image), ("jpeg", as_jpeg(image))):
            for upsample in (0, 1):
                scores = sorted((f.score for f in detect_faces(
                    pixels, upsample=upsample, threshold=lowest, crop_size=None)), reverse=True)
                # An image with a face: its best detection is taken to be the face.
                rows.append(dict(image=name, encoding=encoding, upsample=upsample,
                                 faces=faces, extra_scores=[round(s, 3) for s in scores[faces:]],
                                 pixels=int(pixels.shape[0] * pixels.shape[1])))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true",
                        help="40 LFW photos, read-out off, 4 installed images: checks it runs")
    args = parser.parse_args(argv)
    import bench_lfw_gender as lfw

    import mtlfaces

    lowest = min(THRESHOLDS)
    images = installed_images()
    if args.quick:
        images = {k: images[k] for k in ("astronaut", "coffee", "chelsea", "china")}
    t0 = time.time()
    fp = false_detections(images, lowest)
    fp_seconds = time.time() - t0
    names, photos, truth = lfw.read_photos(args.data, lfw.QUICK_PHOTOS if args.quick else None)
    shapes = [p.shape[:2] for p in photos]
    model = mtlfaces.load_pretrained()
    records = {}
    for readout in ((False,) if args.quick else (False, True)):
        records[readout] = mtlfaces.analyze(photos, model, readout=readout, threshold=lowest)
    rows = []
    face_free = [r for r in fp if r["faces"] == 0]
    for t in THRESHOLDS:
        row = {"threshold": t}
        for readout, recs in records.items():
            kept = [r for r in recs if r.get("status", "ok") == "ok"
                    and r["detector_score"] >= t]
            s = lfw.score(lfw.central_answers(kept, names, shapes), truth)
            row["lfw_face_found"] = s["face_found"]
            row[f"lfw_gender_readout_{'on' if readout else 'off'}"] = s["accuracy"]
            row[f"lfw_gender_when_found_readout_{'on' if readout else 'off'}"] = \
                s["accuracy_when_found"]
        for upsample in (0, 1):
            mine = [r for r in face_free if r["upsample"] == upsample]
            hits = [sum(s >= t for s in r["extra_scores"]) for r in mine]
            row[f"false_upsample{upsample}"] = int(sum(hits))
            row[f"images_with_false_upsample{upsample}"] = int(sum(h > 0 for h in hits))
        row["extra_on_one_face_images"] = int(sum(
            sum(s >= t for s in r["extra_scores"]) for r in fp if r["faces"] == 1))
        rows.append(row)
        print(row, flush=True)
    table(rows, list(rows[0]))
    write_json("detection", {
        "machine": machine(), "lfw_photos": len(names),
        "face_free_images": sorted({r["image"] for r in face_free}),
        "face_free_images_scanned": len(face_free), "megapixels_scanned": round(
            sum(r["pixels"] * (4 if r["upsample"] else 1) for r in face_free) / 1e6, 1),
        "false_detection_seconds": round(fp_seconds, 1), "rows": rows,
        "detections": [r for r in fp if r["extra_scores"]]}, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
