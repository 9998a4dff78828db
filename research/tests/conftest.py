"""The studies' tests use the library suite's fixtures."""

from tests.conftest import astronaut, fitted, shapes, shapes_test  # noqa: F401
