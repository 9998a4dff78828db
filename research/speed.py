"""Speed and cost: inference, detection, alignment, HOG, video, training, memory.

    python research/speed.py            # full (several minutes)
    python research/speed.py --quick    # a small version (used by the tests)

Writes research/results/speed.json. Timings are medians of repeated runs on a
shared machine; compare rows within one run.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _common import (current_rss_mb, machine, median_time, peak_rss_mb, table,  # noqa: E402
                     write_json)


def frames_640x480(astronaut, n_faces):
    """A 640x480 frame holding ``n_faces`` copies of the astronaut's head (real faces)."""
    import cv2

    face = astronaut[40:260, 120:330]  # 220 x 210, the face itself ~87 px wide
    canvas = np.full((480, 640, 3), 90, np.uint8)
    fh, fw = face.shape[:2]
    # Five heads at full size just fit (dlib's HOG detector misses faces under ~80 px).
    spots = [(130, 215)] if n_faces == 1 else [(0, 0), (0, 215), (0, 430), (245, 100),
                                               (245, 320)]
    for top, left in spots[:n_faces]:
        canvas[top:top + fh, left:left + fw] = face
    return canvas


def network_flops(model):
    """Multiply-adds ×2 of the conv and dense layers for one face."""
    total = 0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "Conv2D":
            k = layer.kernel.shape
            out = layer.output.shape
            total += 2 * out[1] * out[2] * out[3] * k[0] * k[1] * k[2]
        elif cls == "Dense":
            k = layer.kernel.shape
            total += 2 * k[0] * k[1]
    return int(total)


def matmul_gflops(n=2048, repeats=3, dtype="float32"):
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    f = tf.function(lambda: tf.matmul(a, b))
    t = median_time(lambda: f().numpy(), repeats=repeats)
    return 2 * n ** 3 / t / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = 2 if quick else 7

    import cv2
    from skimage import data

    import mtlfaces
    from mtlfaces import HOGSVMClassifier, HOGTransformer, MultiTaskFaceClassifier
    from mtlfaces.pipeline import FaceAnalyzer
    from mtlfaces.faces import align_faces, detect_faces

    astronaut = data.astronaut()
    result = {"machine": machine(), "quick": quick}
    start = time.perf_counter()
    clf = mtlfaces.load_pretrained()  # first load includes importing TensorFlow
    first_load = time.perf_counter() - start
    load = median_time(mtlfaces.load_pretrained, repeats=3, warmup=0)
    result["model_file"] = {"bytes": os.path.getsize(mtlfaces.PRETRAINED_MODEL_PATH),
                            "first_load_s": first_load, "load_s": load}
    print(f"bundled model: {result['model_file']['bytes'] / 1e6:.1f} MB, first load "
          f"{first_load:.1f}s (with the TensorFlow import), then {load:.2f}s")

    # -- classification throughput (traced calls), by batch size
    rows = []
    rng = np.random.RandomState(0)
    for batch in (1, 8, 64, 256) if not quick else (1, 64):
        X = rng.randint(0, 256, (batch, clf.image_size, clf.image_size)).astype(np.uint8)
        t = median_time(lambda: clf.predict_proba(X), repeats=repeats)
        rows.append({"what": "CNN (bundled, flip-averaged)", "batch": batch, "ms": t * 1e3,
                     "faces_per_s": batch / t})
    no_tta = mtlfaces.load_pretrained().set_params(test_time_flip=False)
    for batch in (1, 256) if not quick else (64,):
        X = rng.randint(0, 256, (batch, clf.image_size, clf.image_size)).astype(np.uint8)
        t = median_time(lambda: no_tta.predict_proba(X), repeats=repeats)
        rows.append({"what": "CNN (no flip averaging)", "batch": batch, "ms": t * 1e3,
                     "faces_per_s": batch / t})
    from mtlfaces.datasets import make_shapes

    Xs, ys = make_shapes(300, size=48)
    for kernel in ("linear", "rbf"):
        svm = HOGSVMClassifier(kernel=kernel, image_size=48).fit(Xs, ys)
        X = Xs[:256]
        t = median_time(lambda: svm.predict_proba(X), repeats=repeats)
        rows.append({"what": f"HOG+SVM {kernel}", "batch": 256, "ms": t * 1e3,
                     "faces_per_s": 256 / t})
    print("\nClassification throughput")
    table(rows, ["what", "batch", "ms", "faces_per_s"])
    result["classification"] = rows

    # -- detection, alignment, HOG per crop
    frame1 = frames_640x480(astronaut, 1)
    rows = []
    for up in (0, 1):
        t = median_time(lambda: detect_faces(frame1, upsample=up, crop_size=None), repeats=repeats)
        rows.append({"what": f"dlib HOG detection 640x480, upsample {up}", "ms": t * 1e3})
    box = detect_faces(frame1)[0].box
    t = median_time(lambda: align_faces(frame1, [box], crop_size=48), repeats=repeats * 5)
    rows.append({"what": "5-point landmarks + aligned crop, per face", "ms": t * 1e3})
    t = median_time(lambda: align_faces(frame1, [box], pose=True, crop_size=48),
                    repeats=repeats * 5)
    rows.append({"what": "68-point landmarks + crop + head pose, per face", "ms": t * 1e3})
    from mtlfaces.descriptors import face_descriptors, load_pretrained_readout

    faces1 = detect_faces(frame1, pose=True)
    t = median_time(lambda: face_descriptors(frame1, faces1), repeats=repeats * 2)
    rows.append({"what": "dlib face descriptor (the read-out's input), per face", "ms": t * 1e3})
    crop64 = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), (64, 64))[None]
    hog = HOGTransformer(image_size=64).fit(crop64)
    t = median_time(lambda: hog.transform(crop64), repeats=repeats * 5)
    rows.append({"what": "skimage HOG, 64x64 crop", "ms": t * 1e3})
    print("\nFace pipeline steps")
    table(rows, ["what", "ms"])
    result["pipeline"] = rows

    # -- end-to-end video frames/s (the CLI's loop: detect or follow, classify in one batch)
    from mtlfaces.tracking import FaceTracker, relabel, shift_boxes
    from mtlfaces.tasks import classes_by_task

    rows = []
    classes = classes_by_task(clf)
    readout = load_pretrained_readout()
    for n_faces, every, with_readout in [(n, e, r) for r in (False, True) for n in (1, 5)
                                         for e in (1, 3)]:
        frame = frames_640x480(astronaut, n_faces)
        analyzer = FaceAnalyzer(clf, readout=readout if with_readout else None)
        tracker = FaceTracker()
        n_frames = 6 if quick else 30
        prev = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        analyzer.analyze(frame)
        start = time.perf_counter()
        found = 0
        for i in range(n_frames):
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if i % every == 0 or not tracker.tracks:
                res = analyzer.analyze(frame)
            else:
                boxes = [t["box"] for t in tracker.tracks.values() if t["missed"] == 0]
                res = analyzer.follow(frame, shift_boxes(prev, gray, boxes))
            relabel(tracker.update(res), classes)
            prev = gray
            found += len(res)
        secs = time.perf_counter() - start
        rows.append({"faces": n_faces, "detect_every": every,
                     "descriptor_readout": with_readout, "frames_per_s": n_frames / secs,
                     "faces_found_per_frame": found / n_frames})
    print("\nVideo, 640x480, end to end (no decoding/encoding)")
    table(rows, ["faces", "detect_every", "descriptor_readout", "frames_per_s",
                 "faces_found_per_frame"])
    result["video"] = rows

    # -- memory over a long video: stream a written file through the CLI's loop
    import tempfile as _tempfile

    from mtlfaces.video import VideoReader

    with _tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "long.mp4")
        n_frames = 60 if quick else 600
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 480))
        base = cv2.cvtColor(frames_640x480(astronaut, 1), cv2.COLOR_RGB2BGR)
        for i in range(n_frames):
            writer.write(np.roll(base, 2 * (i % 100), axis=1))
        writer.release()
        analyzer, tracker, samples = FaceAnalyzer(clf), FaceTracker(), []
        prev = None
        with VideoReader(path) as reader:
            for index, _, frame in reader:
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                if index % 3 == 0 or not tracker.tracks:
                    res = analyzer.analyze(frame, bgr=True)
                else:
                    boxes = [t["box"] for t in tracker.tracks.values() if t["missed"] == 0]
                    res = analyzer.follow(frame, shift_boxes(prev, gray, boxes), bgr=True)
                relabel(tracker.update(res), classes)
                prev = gray
                if index % (n_frames // 6) == 0 or index == n_frames - 1:
                    samples.append({"frame": index, "rss_mb": current_rss_mb()})
    result["long_video_memory"] = samples
    print(f"\nRSS while streaming a {n_frames}-frame 640x480 video: "
          + ", ".join(f"frame {s['frame']}: {s['rss_mb']:.0f} MB" for s in samples))

    # -- faces/s for a folder of face images through the cropper (from disk)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        from skimage.data import lfw_subset

        faces = lfw_subset()[:100 if not quick else 20]
        paths = []
        for i, f in enumerate(faces):
            p = os.path.join(tmp, f"{i}.png")
            cv2.imwrite(p, cv2.resize((f * 255).astype(np.uint8), (100, 100),
                                      interpolation=cv2.INTER_CUBIC))
            paths.append(p)
        from mtlfaces.images import read_image

        rates = {}
        for with_readout in (False, True):  # the CLI's default for images: with it
            analyzer = FaceAnalyzer(clf, readout=readout if with_readout else None)
            start = time.perf_counter()
            n = 0
            for p in paths:
                n += len(analyzer.analyze(read_image(p)))
            rates[with_readout] = len(paths) / (time.perf_counter() - start)
    result["folder"] = {"images": len(paths), "faces": n, "images_per_s": rates[False],
                        "images_per_s_with_readout": rates[True]}
    print(f"\nFolder of {len(paths)} 100x100 face images: {rates[False]:.1f} images/s, "
          f"{rates[True]:.1f} with the descriptor read-out ({n} faces found)")

    # -- training throughput, fp32 vs mixed bfloat16; time per epoch vs data size
    rows = []
    for size in (48, 64):
        for mixed in (False, True):
            n = 256 if quick else 4096  # --quick: checks it runs, times mean little
            X = rng.randint(0, 256, (n, size, size)).astype(np.uint8)
            y = {"emotion": rng.choice(["Happy", "Sad", "Angry"], n)}
            import pandas as pd

            est = MultiTaskFaceClassifier(image_size=size, epochs=1, mixed_precision=mixed,
                                          validation_fraction=0, random_state=0)
            est.fit(X, pd.DataFrame(y))  # build, compile and trace: not timed
            est.set_params(warm_start=True)  # same data size: no recompilation below
            secs = median_time(lambda: est.fit(X, pd.DataFrame(y)),
                               repeats=1 if quick else 3, warmup=0)
            rows.append({"input": f"{size}x{size}", "precision": "mixed_bfloat16" if mixed
                         else "float32", "images_per_s": n / secs})
    print("\nTraining throughput (default trunk, batch 128, augmentation on)")
    table(rows, ["input", "precision", "images_per_s"])
    result["training"] = rows

    # -- the hardware's limit next to the network's cost
    flops = network_flops(clf.model_)
    gflops = matmul_gflops(1024 if quick else 2048)
    gflops_bf16 = matmul_gflops(1024 if quick else 2048, dtype="bfloat16")
    best = max(r["faces_per_s"] for r in result["classification"]
               if r["what"].startswith("CNN (no"))
    result["compute"] = {"network_flops_per_face": flops, "matmul_gflops": gflops,
                         "matmul_gflops_bf16": gflops_bf16,
                         "best_faces_per_s": best,
                         "achieved_gflops": flops * best / 1e9}
    print(f"\nNetwork: {flops / 1e6:.1f} MFLOP per face; matmul on this CPU: "
          f"{gflops:.0f} GFLOP/s float32, {gflops_bf16:.0f} bfloat16; best classification "
          f"rate (bfloat16 model) {best:.0f} faces/s = "
          f"{flops * best / 1e9:.1f} GFLOP/s achieved")
    result["peak_rss_mb"] = peak_rss_mb()
    print(f"peak RSS of this run: {result['peak_rss_mb']:.0f} MB")
    write_json("speed", result, quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
