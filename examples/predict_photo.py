"""Classify every face in a photo with the bundled model.

    python examples/predict_photo.py [photo.jpg]     # default: scikit-image's astronaut
"""

import sys

import mtlfaces
from mtlfaces.analysis import FaceAnalyzer
from mtlfaces.images import read_image


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        image = read_image(argv[0])
    else:
        from skimage import data

        image = data.astronaut()
    analyzer = FaceAnalyzer(mtlfaces.load_pretrained())
    faces = analyzer.analyze(image)
    for face in faces:
        labels = ", ".join(f"{t}: {face.labels[t]} ({face.probabilities[t]:.2f})"
                           for t in face.labels)
        print(f"face at {face.box}: {labels}")
    return faces


if __name__ == "__main__":
    main()
