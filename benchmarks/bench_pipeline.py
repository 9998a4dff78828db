"""The whole route (mtlfaces.analyze): latency per photo and per video frame, peak memory.

    python benchmarks/bench_pipeline.py [--quick] [--write-docs]

Photos: scikit-image's astronaut (one face) through ``Analyzer.analyze``, read-out on (the
default for photos) and off. Video: a 640×480 clip written here with the astronaut's face
moving across it, detection on every frame and on every third; and one with three faces,
detection every 1, 2 and 3 frames, and on every frame shrunk to 320 px (``max_side``), with
the label flicker (label changes per track per 100 frames) and the faces found per frame.
Prints a table and writes ``benchmarks/results/pipeline.json``; ``--write-docs`` also
writes the video table in ``docs/speed.md``.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (ROOT, current_rss_mb, machine, median_time, peak_rss_mb, publish,  # noqa: E402
                    table)

DOCS = os.path.join(ROOT, "docs", "speed.md")  # the file whose video table this writes
MARKERS = ("<!-- video:start -->", "<!-- video:end -->")


README = os.path.join(ROOT, "README.md")
README_MARKERS = ("<!-- pipeline-summary:start -->", "<!-- pipeline-summary:end -->")


def render_summary(result):
    """The README's line of a result (``pipeline.json``): a photo, and the three-face video
    at the default ``every`` and detecting on every frame."""
    from mtlfaces._defaults import DEFAULT_EVERY

    rows = {r["case"]: r for r in result["rows"]}
    on = rows["photo 512x512, 1 face, read-out on"]
    off = rows["photo 512x512, 1 face, read-out off"]
    default = rows[f"video 640x480, 3 faces, detect every {DEFAULT_EVERY}"]
    every = rows["video 640x480, 3 faces, detect every 1"]
    return (f"On {result['machine']['cpu_count']} CPU cores, a 512×512 photo takes "
            f"{off['ms']:.0f} ms ({on['ms']:.0f} ms with the read-out), and a 640×480 video "
            f"with three faces runs at {default['per_s']:.0f} frames/s (detecting faces every "
            f"{DEFAULT_EVERY} frames, the default; {every['per_s']:.0f} detecting on every "
            "frame). `python benchmarks/bench_pipeline.py --write-docs` writes this line.")


def render(result):
    """docs/speed.md's video table of a result (``pipeline.json``)."""
    lines = ["| video, 640×480 | ms per frame | frames/s | label changes per 100 | "
             "faces per frame |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        if not r["case"].startswith("video"):
            continue
        flick = r.get("label_changes_per_100")
        faces = r.get("faces_per_frame")
        lines.append(f"| {r['case'][len('video 640x480, '):]} | {r['ms']:.1f} | "
                     f"{r['per_s']:.1f} | {'' if flick is None else f'{flick:.2f}'} | "
                     f"{'' if faces is None else f'{faces:.2f}'} |")
    lines += ["", f"{result['video_frames']} frames a clip, bundled model, read-out off (the "
              f"video default), {result['machine']['cpu_count']} CPU cores; "
              "`python benchmarks/bench_pipeline.py --write-docs` writes this block."]
    return "\n".join(lines)


def write_clip(path, face, frames, size=(640, 480)):
    """A real video: ``face`` (RGB) moving right across a grey frame."""
    import cv2

    bgr = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for i in range(frames):
        canvas = np.full((size[1], size[0], 3), 90, np.uint8)
        x = 20 + (i * 7) % (size[0] - bgr.shape[1] - 20)
        canvas[120:120 + bgr.shape[0], x:x + bgr.shape[1]] = bgr
        writer.write(canvas)
    writer.release()
    return path


def write_clip3(path, photo, frames, size=(640, 480)):
    """A real video with three faces (the astronaut's, one mirrored) drifting about."""
    import cv2

    face = cv2.cvtColor(np.ascontiguousarray(photo[40:240, 120:320]), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for i in range(frames):
        canvas = np.full((size[1], size[0], 3), 90, np.uint8)
        for k, (x0, y0) in enumerate([(0, 10), (220, 240), (400, 20)]):
            x, y = x0 + (i * 2) % 40, y0 + (i * (k + 1)) % 30
            canvas[y:y + 200, x:x + 200] = face[:, ::-1] if k == 1 else face
        writer.write(canvas)
    writer.release()
    return path


def flicker(frames):
    """Label changes per track per 100 frames, summed over the tasks."""
    last, changes, seen = {}, 0, 0
    for frame in frames:
        for face in frame.faces:
            labels = tuple(face.labels.values())
            if face.track in last and last[face.track] != labels:
                changes += sum(a != b for a, b in zip(last[face.track], labels))
            last[face.track] = labels
            seen += 1
    return 100 * changes / max(seen, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds: fewer repeats and frames")
    parser.add_argument("--write-docs", action="store_true",
                        help="also write docs/speed.md's video table (not with --quick)")
    args = parser.parse_args(argv)
    import mtlfaces
    from skimage import data

    photo = data.astronaut()
    repeats, frames = (2, 20) if args.quick else (10, 250)
    rows = []
    for readout in (True, False):
        analyzer = mtlfaces.Analyzer(readout=readout)
        seconds = median_time(lambda: analyzer.analyze(photo), repeats=repeats)
        rows.append({"case": f"photo 512x512, 1 face, read-out {'on' if readout else 'off'}",
                     "ms": seconds * 1000, "per_s": 1 / seconds})
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(os.path.join(tmp, "clip.mp4"), photo[40:260, 120:330], frames)
        for every in (1, 3):
            analyzer = mtlfaces.Analyzer(every=every)
            rss = current_rss_mb()
            start = time.perf_counter()
            n = sum(1 for _ in analyzer.frames(clip))
            seconds = time.perf_counter() - start
            rows.append({"case": f"video 640x480, 1 face, detect every {every}",
                         "ms": seconds / n * 1000, "per_s": n / seconds,
                         "rss_growth_mb": current_rss_mb() - rss})
        clip3 = write_clip3(os.path.join(tmp, "three.mp4"), photo, frames)
        for every, side in ((1, None), (2, None), (3, None), (1, 320)):
            analyzer = mtlfaces.Analyzer(every=every, max_side=side)
            start = time.perf_counter()
            out = list(analyzer.frames(clip3))
            seconds = time.perf_counter() - start
            shrunk = f", detected at {side} px" if side else ""
            rows.append({"case": f"video 640x480, 3 faces, detect every {every}{shrunk}",
                         "ms": seconds / len(out) * 1000, "per_s": len(out) / seconds,
                         "label_changes_per_100": flicker(out),
                         "faces_per_frame": sum(len(f.faces) for f in out) / len(out)})
    table(rows, ["case", "ms", "per_s", "rss_growth_mb", "label_changes_per_100",
                 "faces_per_frame"])
    print(f"peak RSS {peak_rss_mb():.0f} MB (per_s: photos or frames per second)")
    result = {"machine": machine(), "rows": rows, "video_frames": frames,
              "peak_rss_mb": peak_rss_mb()}
    publish("pipeline", result, args.quick, args.write_docs,
            [(DOCS, MARKERS, render), (README, README_MARKERS, render_summary)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
