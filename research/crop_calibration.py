"""How much margin should the face cropper leave for the bundled model?

    python research/crop_calibration.py [--data-dir ../shared/data] [--quick]

The bundled model is trained on the datasets' own crops. At inference, faces come
from dlib's detector and ``get_face_chip``; this script re-crops validation faces
(UTKFace hold-out photos, and FER2013 PublicTest faces upscaled 3x) through
``detect_faces`` at several paddings and reports the model's accuracy on each, next
to its accuracy on the datasets' own crops. The default padding of FaceCropper (0.1)
was chosen here with the first bundled model; the README's model card says how the
present one fares at each. Writes research/results/crop_calibration.json.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _common import DEFAULT_DATA, machine, table, write_json  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import cv2

    import mtlfaces
    from mtlfaces import datasets as D
    from mtlfaces.faces import detect_faces

    clf = mtlfaces.load_pretrained()
    cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cache")
    Xu, yu = D.load_utkface(os.path.join(args.data_dir, "UTKFace.tar.gz"), image_size=200,
                            grayscale=False, cache_dir=cache)
    step = 20 if args.quick else 4
    idx = np.flatnonzero(D.utkface_validation_mask(yu))[::step]
    Xf, yf = D.load_fer2013(os.path.join(args.data_dir, "fer2013.tar.gz"), usage="PublicTest",
                            cache_dir=cache)
    fidx = np.arange(0, len(Xf), 6 * (5 if args.quick else 1))
    fer_up = [cv2.resize(Xf[i], (144, 144), interpolation=cv2.INTER_CUBIC) for i in fidx]
    rows = []
    pads = (0.1, 0.3) if args.quick else (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
    for pad in pads:
        crops, keep = [], []
        for i in idx:
            f = detect_faces(Xu[i], crop_size=clf.image_size, crop_padding=pad)
            if f:
                crops.append(f[0].crop)
                keep.append(i)
        p = clf.predict(np.stack(crops))
        fcrops, fkeep = [], []
        for i, im in zip(fidx, fer_up):
            f = detect_faces(im, crop_size=clf.image_size, crop_padding=pad)
            if f:
                fcrops.append(f[0].crop)
                fkeep.append(i)
        pf = clf.predict(np.stack(fcrops))
        rows.append({
            "padding": pad, "utk_found": f"{len(keep)}/{len(idx)}",
            "gender": float(np.mean(p[:, 1] == yu["gender"].to_numpy()[keep])),
            "age": float(np.mean(p[:, 0] == yu["age"].to_numpy()[keep])),
            "fer_found": f"{len(fkeep)}/{len(fidx)}",
            "emotion": float(np.mean(pf[:, 2] == yf["emotion"].to_numpy()[fkeep])),
        })
        print(rows[-1], flush=True)
    own = clf.predict(Xu[idx])
    own_f = clf.predict(Xf[fidx])
    rows.append({"padding": "dataset crops", "utk_found": f"{len(idx)}/{len(idx)}",
                 "gender": float(np.mean(own[:, 1] == yu["gender"].to_numpy()[idx])),
                 "age": float(np.mean(own[:, 0] == yu["age"].to_numpy()[idx])),
                 "fer_found": f"{len(fidx)}/{len(fidx)}",
                 "emotion": float(np.mean(own_f[:, 2] == yf["emotion"].to_numpy()[fidx]))})
    table(rows, ["padding", "utk_found", "gender", "age", "fer_found", "emotion"])
    write_json("crop_calibration", {"machine": machine(), "rows": rows}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
