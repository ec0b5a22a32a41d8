"""Bad vectors are refused with the chunk ids that carry them."""

import numpy as np
import pytest

from medkg_assets.encoders.errors import DimensionMismatchError, InvalidVectorError
from medkg_assets.vectors.validation import validate_vectors

IDS = ["c0", "c1", "c2"]


def test_good_vectors_pass():
    validate_vectors(np.eye(3, dtype=np.float32), 3, True, IDS, "ns/p")


def test_nan_and_inf_are_refused_naming_chunks():
    vectors = np.eye(3, dtype=np.float32)
    vectors[1, 0], vectors[2, 2] = np.nan, np.inf
    with pytest.raises(InvalidVectorError, match="2 vector.*c1, c2"):
        validate_vectors(vectors, 3, False, IDS, "ns/p")


def test_zero_norm_is_refused_only_when_normalising():
    vectors = np.eye(3, dtype=np.float32)
    vectors[0] = 0
    with pytest.raises(InvalidVectorError, match="zero-norm.*c0"):
        validate_vectors(vectors, 3, True, IDS, "ns/p")
    validate_vectors(vectors, 3, False, IDS, "ns/p")


def test_wrong_dims_are_refused_with_the_fix():
    with pytest.raises(DimensionMismatchError, match="4-d vectors but the profile says dims=3"):
        validate_vectors(np.ones((3, 4), dtype=np.float32), 3, False, IDS, "ns/p")
