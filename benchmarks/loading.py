"""Dataset loading speed: the real archives, decoded to arrays, then reloaded from the cache.

    python benchmarks/loading.py [--data-dir ../shared/data] [--quick]

Also checks the counts the datasets must have (19,026 / 28,561 + 3,579 / 927 and 981).
Writes benchmarks/results/loading.json.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, machine, peak_rss_mb, table, write_json  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="1,000 images per dataset")
    args = parser.parse_args(argv)
    from mtlfaces import datasets as D

    limit = 1000 if args.quick else None
    cases = [
        ("UTKFace.tar.gz -> 64x64 gray", D.load_utkface, "UTKFace.tar.gz", dict(image_size=64)),
        ("fer2013.tar.gz (CSV) -> 48x48", D.load_fer2013, "fer2013.tar.gz", {}),
        ("CK+48.zip -> 48x48", D.load_ckplus, "CK+48.zip", {}),
    ]
    rows = []
    cache = tempfile.mkdtemp(prefix="mtlfaces-cache-")
    try:
        for name, loader, file, kw in cases:
            path = os.path.join(args.data_dir, file)
            t = time.perf_counter()
            X, y = loader(path, limit=limit, cache_dir=cache, **kw)
            first = time.perf_counter() - t
            t = time.perf_counter()
            loader(path, limit=limit, cache_dir=cache, **kw)
            cached = time.perf_counter() - t
            splits = y["split"].value_counts().to_dict() if y["split"].notna().any() else {}
            rows.append({"dataset": name, "images": len(X), "first_load_s": first,
                         "cached_load_s": cached, "splits": splits})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    table(rows, ["dataset", "images", "first_load_s", "cached_load_s", "splits"])
    if not args.quick:
        counts = {r["dataset"].split()[0]: r["images"] for r in rows}
        assert counts["UTKFace.tar.gz"] == 19026, counts
        fer = rows[1]["splits"]
        assert fer == {"Training": 28561, "PublicTest": 3579}, fer
        assert counts["CK+48.zip"] == 927, counts
        print("counts check: UTKFace 19,026; FER2013 28,561 Training + 3,579 PublicTest; "
              "CK+ 927 without contempt")
    write_json("loading", {"machine": machine(), "rows": rows, "peak_rss_mb": peak_rss_mb()},
               args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
