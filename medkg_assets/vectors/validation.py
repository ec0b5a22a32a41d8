"""Refuse vectors a search index must never see: wrong dims, NaN/inf, zero norms."""

from __future__ import annotations

import numpy as np

from medkg_assets.encoders.errors import DimensionMismatchError, InvalidVectorError


def validate_vectors(vectors: np.ndarray, dims: int, normalize: bool, ids: list[str], where: str) -> None:
    """Raise with the first offending chunk ids when vectors break the profile's contract."""
    if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dims):
        got = vectors.shape[1] if vectors.ndim == 2 else vectors.shape
        raise DimensionMismatchError(
            f"{where}: the model produced {got}-d vectors but the profile says dims={dims}; "
            "fix `dense.dims` in config/embedding_profiles.yaml or the model reference"
        )
    bad_rows = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad_rows.size:
        sample = ", ".join(ids[i] for i in bad_rows[:5])
        raise InvalidVectorError(f"{where}: {bad_rows.size} vector(s) contain NaN/inf (chunks {sample})")
    if normalize:
        zero = np.flatnonzero(np.linalg.norm(vectors, axis=1) < 1e-6)
        if zero.size:
            sample = ", ".join(ids[i] for i in zero[:5])
            raise InvalidVectorError(
                f"{where}: {zero.size} zero-norm vector(s) cannot be normalised (chunks {sample}); "
                "check the chunk text or turn normalisation off for this profile"
            )
