"""Packaging for mtlfaces (metadata lives here; pyproject.toml only names the build backend)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="mtlfaces",
    version="0.3.1",
    description="Age group, gender and emotion for every face: one multi-task Keras network "
                "with a scikit-learn interface",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["mtlfaces", "mtlfaces.*"]),
    package_data={"mtlfaces": ["models/*.mtlfaces", "models/*.json", "static/*.html"]},
    include_package_data=True,
    install_requires=[
        "numpy>=1.24",
        "pandas>=2.0",
        "scikit-learn>=1.6",
        "scikit-image>=0.22",
        "joblib>=1.3",
        "click>=8.1",
        "keras>=3.5",
        "tensorflow>=2.17",
        # dlib as a prebuilt wheel: building `dlib` from source takes ~17 minutes.
        "dlib-bin>=19.24",
        # dlib's 5/68-point landmark and MMOD detector model files, installed offline.
        "face_recognition_models>=0.3.0",
        "opencv-python-headless>=4.8",
        "matplotlib>=3.7",
        # Image headers (size before decoding, for the pixel limit).
        "pillow>=9.1",
        # mtlfaces serve: the ASGI app, its server, multipart uploads.
        "starlette>=0.40",
        "uvicorn>=0.30",
        "python-multipart>=0.0.9",
        # Past one process (mtlfaces.distributed, predict --parquet): Dask's scheduler and
        # workers, and Parquet for the output.
        "dask[dataframe]>=2024.8",
        "distributed>=2024.8",
        "pyarrow>=14",
    ],
    extras_require={"dev": ["pytest>=7.4", "pytest-xdist>=3.5", "pytest-cov>=5", "pooch>=1.6",
                            "hypothesis>=6.100", "httpx>=0.27",
                            "httpx2>=2.0", "selenium>=4.20",
                            # ParallelPostFit over dask arrays of crops (tested; pulls numba).
                            "dask-ml>=2024.4"]},
    entry_points={"console_scripts": ["mtlfaces=mtlfaces.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
