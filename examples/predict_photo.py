"""Classify every face in a photo with the bundled model: what `mtlfaces predict` does.

    python examples/predict_photo.py [photo.jpg]     # default: scikit-image's astronaut
"""

import sys

import mtlfaces


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        source = argv[0]
    else:
        from skimage import data

        source = data.astronaut()
    faces = mtlfaces.analyze(source)  # one record per face, as `mtlfaces predict --json`
    for face in faces:
        labels = ", ".join(f"{t}: {face[t]} ({face[f'{t}_probability']:.2f})"
                           for t in ("age", "gender", "emotion"))
        box = (face["left"], face["top"], face["right"], face["bottom"])
        print(f"{face['source']}: face at {box}: {labels}")
    return faces


if __name__ == "__main__":
    main()
