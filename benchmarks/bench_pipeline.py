"""The whole route (mtlfaces.analyze): latency per photo and per video frame, peak memory.

    python benchmarks/bench_pipeline.py [--quick]

Photos: scikit-image's astronaut (one face) through ``Analyzer.analyze``, read-out on (the
default for photos) and off. Video: a 640×480 clip written here with the astronaut's face
moving across it, detection on every frame and on every third. Prints a table and writes
``benchmarks/results/pipeline.json``.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import current_rss_mb, machine, median_time, peak_rss_mb, table, write_json  # noqa: E402


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds: fewer repeats and frames")
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
    table(rows, ["case", "ms", "per_s", "rss_growth_mb"])
    print(f"peak RSS {peak_rss_mb():.0f} MB (per_s: photos or frames per second)")
    write_json("pipeline", {"machine": machine(), "rows": rows, "video_frames": frames,
                            "peak_rss_mb": peak_rss_mb()}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
