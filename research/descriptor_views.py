"""Does the descriptor read-out gain from more views of each face?

    python research/descriptor_views.py [--data-dir ../shared/data] [--jobs 2]
        [--max-faces N] [--analyse-only]

The shipped read-out (:mod:`mtlfaces.descriptors`) describes each face once: dlib's
face-recognition ResNet on the face's 150-pixel chip at dlib's default padding (0.25).
This script measures three cheap variations, on the same fixed UTKFace split as
``descriptor_probe.py`` (trained on faces outside the validation part, scored inside it):

- **mirrored**: the descriptor of the chip flipped left to right. Used to train (each
  training face twice: free at prediction time) and/or to predict (the mean of the two
  views' probabilities, or the read-out of the mean descriptor: twice the cost).
- **padding 0.5**: the chip cut with twice the margin (more hair and outline, cues of
  gender and age that the identity chip leaves out), alone, or its read-out averaged with
  the default chip's.

Every arm is a :class:`mtlfaces.descriptors.DescriptorReadout` (``C=1``, as shipped),
scored alone and as the mean with the bundled network (weight one half each, as
``mtlfaces predict``), and with the network averaged over ``posthoc.py``'s test-time
shifts (the face moved 2 pixels up, down, left and right: ten passes instead of two, a few
milliseconds per face beside the descriptor's 80). The arms were named before the run;
nothing is tuned on the validation faces.

Descriptors are computed in chunks, validation faces first, then the training faces in a
seeded random order, and kept in ``--cache-dir`` as they finish: a stopped run continues
where it stopped, and ``--max-faces N`` (or ``--analyse-only``) scores the arms on the
training faces described so far (all arms on the same faces). Writes
research/results/descriptor_views.json.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA, ROOT, machine, table, write_json  # noqa: E402

TASKS = ("gender", "age")
VIEWS = ("as given", "mirrored", "padding 0.5")
CHUNK = 250
VIEWS_VERSION = 1  # bump when a view changes what it computes

_IMAGES = None  # for forked workers (copy-on-write, never pickled)


def describe(images):
    """The three views' descriptors of face crops: (n, 3, 128) float32, and detections."""
    import dlib

    from mtlfaces.descriptors import SIZE, crop_landmarks
    from mtlfaces.faces import _model

    net = _model("descriptor")
    out, found = np.zeros((len(images), len(VIEWS), SIZE), np.float32), 0
    for i, image in enumerate(images):
        rgb, shape, detected = crop_landmarks(image)
        found += detected
        chip = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
        wide = dlib.get_face_chip(rgb, shape, size=150, padding=0.5)
        chips = [chip, np.ascontiguousarray(chip[:, ::-1]), wide]
        out[i] = np.asarray(net.compute_face_descriptor(chips))
    return out, found


def _describe_chunk(indices):
    t = time.time()
    features, found = describe(_IMAGES[indices])
    return indices, features, found, time.time() - t


def compute_views(images, order, cache_dir, jobs, max_faces):
    """Describe the first ``max_faces`` of ``images[order]``, chunk by chunk, into
    ``cache_dir`` (a chunk already there is kept: a stopped run continues)."""
    global _IMAGES
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    os.makedirs(cache_dir, exist_ok=True)
    chunks = [order[i:i + CHUNK] for i in range(0, min(len(order), max_faces), CHUNK)]
    todo = [(k, c) for k, c in enumerate(chunks)
            if not os.path.exists(os.path.join(cache_dir, f"chunk{k:04d}.npz"))]
    pool = (ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
            if jobs > 1 and len(todo) > 1 else None)  # one chunk: no processes to start
    print(f"{len(chunks) - len(todo)} of {len(chunks)} chunks cached; describing "
          f"{sum(len(c) for _, c in todo)} faces in {jobs if pool else 1} process(es)",
          flush=True)
    _IMAGES = images
    t0 = time.time()
    try:
        done = pool.map if pool else map
        for (k, _), (indices, features, found, seconds) in zip(
                todo, done(_describe_chunk, [c for _, c in todo])):
            path = os.path.join(cache_dir, f"chunk{k:04d}.npz")
            np.savez(path + ".tmp.npz", indices=indices, features=features,
                     found=found, seconds=seconds)
            os.replace(path + ".tmp.npz", path)
            print(f"chunk {k + 1}/{len(chunks)}: {seconds / len(indices):.3f} s per face "
                  f"(3 views), {time.time() - t0:.0f} s so far", flush=True)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        _IMAGES = None


def load_views(cache_dir):
    """Indices, (n, 3, 128) features, detections and seconds per face of cached chunks."""
    parts = []
    for name in sorted(os.listdir(cache_dir) if os.path.isdir(cache_dir) else []):
        if name.startswith("chunk") and name.endswith(".npz") and ".tmp" not in name:
            with np.load(os.path.join(cache_dir, name)) as z:
                parts.append((z["indices"], z["features"], int(z["found"]),
                              float(z["seconds"])))
    if not parts:
        raise SystemExit(f"no descriptors in {cache_dir}: run without --analyse-only first")
    indices = np.concatenate([p[0] for p in parts])
    return (indices, np.concatenate([p[1] for p in parts]), sum(p[2] for p in parts),
            sum(p[3] for p in parts) / len(indices))


def arms(F_train, F_val):
    """The training sets and the named read-outs.

    ``F_*`` are (n, 3, 128) in :data:`VIEWS` order. Returns ``training, arms``:
    ``training`` is ``key -> features`` (each training face once per view it holds, views
    stacked), ``arms`` is ``name -> [(training key, validation features), ...]``; each
    member is the read-out fitted on ``training[key]`` predicting its validation
    features, and an arm's probabilities are the mean of its members'.
    """
    given, mirrored, wide = (F_train[:, k] for k in range(3))
    v_given, v_mirrored, v_wide = (F_val[:, k] for k in range(3))
    training = {"as given": given, "as given and mirrored": np.concatenate([given, mirrored]),
                "mean of both views": (given + mirrored) / 2, "padding 0.5": wide}
    return training, {
        "as given (0.3.1's read-out)": [("as given", v_given)],
        "trained on both, predicts as given": [("as given and mirrored", v_given)],
        "as given, predicts mean of both views": [("as given", v_given),
                                                  ("as given", v_mirrored)],
        "trained on both, predicts mean of both views": [("as given and mirrored", v_given),
                                                         ("as given and mirrored", v_mirrored)],
        "mean descriptor of both views": [("mean of both views", (v_given + v_mirrored) / 2)],
        "padding 0.5": [("padding 0.5", v_wide)],
        "mean of the padding 0.25 and 0.5 read-outs": [("as given", v_given),
                                                       ("padding 0.5", v_wide)],
    }


def tuned_weight(p_network, p_readout, onehot, splits=20, seed=0):
    """Cross-validated accuracy of ``(1 - w) p_network + w p_readout`` with ``w`` (0 to 1 in
    steps of 0.05) chosen on a random half of the faces and scored on the other half, both
    ways, over ``splits`` seeded splits; beside the fixed ``w = 0.5`` on the same halves.
    ``onehot`` (n, k) marks each face's true class."""
    grid = np.linspace(0, 1, 21)
    right = np.stack([onehot[np.arange(len(onehot)),
                             ((1 - w) * p_network + w * p_readout).argmax(1)] for w in grid])
    rng, tuned, fixed, chosen = np.random.default_rng(seed), [], [], []
    for _ in range(splits):
        order = rng.permutation(len(onehot))
        halves = order[:len(order) // 2], order[len(order) // 2:]
        for fit, test in (halves, halves[::-1]):
            best = int(right[:, fit].mean(1).argmax())
            tuned.append(right[best, test].mean())
            fixed.append(right[10, test].mean())  # grid[10] == 0.5
            chosen.append(grid[best])
    return {"tuned": float(np.mean(tuned)), "fixed 0.5": float(np.mean(fixed)),
            "mean weight chosen": round(float(np.mean(chosen)), 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--jobs", type=int, default=2, help="processes computing descriptors")
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"),
                        help="where the views' chunks are kept between runs")
    parser.add_argument("--max-faces", type=int, default=0,
                        help="describe the first N faces of the order (default 0: all)")
    parser.add_argument("--analyse-only", action="store_true",
                        help="score the arms on the faces described so far; describe none")
    parser.add_argument("--quick", action="store_true",
                        help="160 faces, described afresh: checks the script runs")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.max_faces < 0:
        parser.error(f"--jobs {args.jobs} --max-faces {args.max_faces}: expected one job "
                     "or more and a count >= 0 (0: all faces)")
    if args.quick and args.analyse_only:
        parser.error("--quick describes its faces afresh; it cannot be --analyse-only")
    from mtlfaces import datasets as D
    from mtlfaces import load_pretrained
    from mtlfaces.descriptors import DescriptorReadout

    archive = os.path.join(args.data_dir, "UTKFace.tar.gz")
    X, y = D.load_utkface(archive, image_size=200, grayscale=False,
                          limit=160 if args.quick else None, random_state=0)
    stat = os.stat(archive)
    cache = (tempfile.mkdtemp(prefix="descriptor_views-") if args.quick else
             os.path.join(args.cache_dir, f"descriptor_views-v{VIEWS_VERSION}-{len(X)}-"
                                          f"{stat.st_size}-{stat.st_mtime_ns}"))
    val = D.validation_mask(y)
    order = np.concatenate([np.flatnonzero(val),
                            np.random.default_rng(0).permutation(np.flatnonzero(~val))])
    try:
        if not args.analyse_only:
            compute_views(X, order, cache, args.jobs, args.max_faces or len(order))
        indices, features, found, per_face = load_views(cache)
    finally:
        if args.quick:
            shutil.rmtree(cache, ignore_errors=True)
    F = np.zeros((len(X), len(VIEWS), features.shape[2]), np.float32)
    F[indices] = features
    done = np.zeros(len(X), bool)
    done[indices] = True
    if not done[val].all():
        raise SystemExit(f"only {done[val].sum()} of {val.sum()} validation faces are "
                         "described; run without --analyse-only first")
    train = ~val & done
    print(f"scoring on {train.sum()} training and {val.sum()} validation faces")
    from mtlfaces._preprocessing import prepare_images
    from posthoc import shifted

    bundled = load_pretrained()
    faces = prepare_images(X[val], bundled.image_size, bundled.grayscale)
    # The network as shipped (flip-averaged), and with posthoc.py's "+ 4 shifts of 2 px".
    shifts = [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]
    network = {"bundled": bundled.predict_proba(faces),
               "bundled with shifts": [np.mean(p, axis=0) for p in zip(
                   *(bundled.predict_proba(shifted(faces, dy, dx)) for dy, dx in shifts))]}
    columns = {t: bundled.tasks_.index(t) for t in TASKS}
    classes = {t: np.asarray(bundled.classes_[columns[t]]).astype(str) for t in TASKS}
    truth = {t: y[t].astype(str).to_numpy()[val] for t in TASKS}

    def right(t, p):
        """Which validation faces the probabilities ``p`` (task ``t``) get right."""
        return classes[t][p.argmax(1)] == truth[t]

    network_rows = [{"network": net, **{t: float(right(t, proba[columns[t]]).mean())
                                        for t in TASKS}} for net, proba in network.items()]
    training, named = arms(F[train], F[val])
    readouts = {}
    for key, features_ in training.items():
        print(f"fitting the read-out on {key}", flush=True)
        repeat = len(features_) // int(train.sum())  # views stacked: labels repeat with them
        readouts[key] = DescriptorReadout(C=1.0).fit(
            features_, {t: np.tile(y[t].astype(str).to_numpy()[train], repeat) for t in TASKS})

    def member_proba(key, F_val, t):  # in the network's column order
        readout = readouts[key]
        return readout.predict_proba(F_val)[t][:, [readout.classes_[t].index(c)
                                                   for c in classes[t]]]

    rows, correct = {}, {}  # correct: (arm, task, network) -> faces its pair gets right
    for name, members in named.items():
        row = rows[name] = {"read-out": name}
        for t in TASKS:
            p = np.mean([member_proba(*m, t) for m in members], axis=0)
            row[t] = float(right(t, p).mean())
            for net, proba in network.items():
                correct[name, t, net] = right(t, p + proba[columns[t]])  # the mean's argmax
                row[f"{t} + {net}"] = float(correct[name, t, net].mean())
    first = next(iter(named))

    def gained_lost(a, b):
        return [int((a & ~b).sum()), int((b & ~a).sum())]

    # Faces each arm's pair with the network gets right that the first arm's pair gets
    # wrong, and the reverse: the arms differ by a few faces; this says how many.
    paired = {name: {t: gained_lost(correct[name, t, "bundled"], correct[first, t, "bundled"])
                     for t in TASKS} for name in named}
    # The first arm with the network's test-time shifts against the same without them.
    shifted_pair = {t: gained_lost(correct[first, t, "bundled with shifts"],
                                   correct[first, t, "bundled"]) for t in TASKS}
    # Another weight than one half for the first arm's read-out against the network, chosen
    # on one half of the validation faces and scored on the other (both ways, 20 seeded
    # splits): would tuning the weight on held-out faces pay?
    weights = {t: tuned_weight(network["bundled"][columns[t]],
                               np.mean([member_proba(*m, t) for m in named[first]], axis=0),
                               truth[t][:, None] == classes[t][None])
               for t in TASKS}
    rows = list(rows.values())
    table(network_rows, ["network", *TASKS])
    print()
    table(rows, list(rows[0]))
    print("\nwith the bundled network, faces gained / lost against the first arm's pair:")
    table([{"read-out": k, **{t: f"+{g} / -{l}" for t, (g, l) in v.items()}}
           for k, v in paired.items()], ["read-out", *TASKS])
    print("\nthe first arm's pair with the network's test-time shifts, faces gained / lost: "
          + ", ".join(f"{t} +{g} / -{l}" for t, (g, l) in shifted_pair.items()))
    print("\nthe first arm's weight against the network, tuned on half the validation faces:")
    table([{"task": t, **w} for t, w in weights.items()], ["task", *weights[TASKS[0]]])
    write_json("descriptor_views", {
        "machine": machine(), "views": VIEWS, "train_faces": int(train.sum()),
        "train_faces_available": int((~val).sum()), "validation_faces": int(val.sum()),
        "detected": int(found), "seconds_per_face_3_views": round(per_face, 3),
        "network_shifts": shifts, "network": network_rows, "rows": rows,
        "paired_with_bundled": paired,
        "paired_shifts": shifted_pair, "tuned_weight": weights}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
