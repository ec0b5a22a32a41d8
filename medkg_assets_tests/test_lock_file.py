"""`requirements.lock` is what `make install` installs: complete, exact, and true to pyproject."""

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from medkg_assets.settings import PROJECT_ROOT


def _locked() -> dict[str, Version]:
    pins = {}
    for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, separator, version = line.partition("==")
        assert separator, f"requirements.lock: {line!r} is not an exact pin"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *optional["dev"], *optional["local-models"]]]


def test_every_declared_dependency_is_locked_within_its_specifier():
    locked = _locked()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements.lock; run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock has {name}=={locked[name]}, pyproject.toml asks {requirement}; "
            "run `make lock`"
        )


def test_torch_stays_the_cpu_wheel_of_the_exact_pin():
    assert str(_locked()["torch"]) == "2.13.0+cpu"
