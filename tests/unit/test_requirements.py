"""The installed dependencies agree with pyproject.toml: installing an extra never moves a base dependency.

`pip install -e '.[test]'` once downgraded orbax-checkpoint from 0.12.8 (what a plain install gets) to 0.11.36,
because jax2onnx (the `onnx` extra) caps it: the tests ran on another Orbax than users. Every upper bound that a
package of the extras' closure sets on a base dependency must be in the base requirement too
(caps set by packages a plain install has as well bind both installs alike).
"""

import tomllib
from importlib import metadata

import pytest
from helpers.paths import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


def _requirements(distribution: str, extras: set[str]) -> list[Requirement]:
    requirements = []
    for text in metadata.requires(distribution) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
            requirements.append(requirement)
    return requirements


def _closure(roots: list[Requirement]) -> dict[str, list[Requirement]]:
    """{installed distribution: its requirements} for everything `roots` pull in."""
    seen: dict[str, list[Requirement]] = {}
    pending = list(roots)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or name == "colorjax":
            continue
        try:
            seen[name] = _requirements(name, set(requirement.extras))
        except metadata.PackageNotFoundError:
            continue
        pending += seen[name]
    return seen


def test_no_extra_caps_a_base_dependency_below_what_the_base_allows():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {canonicalize_name(r.name): r.specifier for r in map(Requirement, project["dependencies"])}
    extras = [Requirement(text) for text in project["optional-dependencies"]["test"]]
    extras += [
        Requirement(text) for name in ("serve", "video", "onnx") for text in project["optional-dependencies"][name]
    ]
    closure = _closure([r for r in extras if canonicalize_name(r.name) != "colorjax"])
    if "jax2onnx" not in closure:
        pytest.skip("the [test] extra is not installed here")
    in_base = _closure([Requirement(text) for text in project["dependencies"]])  # their caps bind a plain install too
    looser = []
    for distribution, requirements in closure.items():
        if distribution in in_base:
            continue
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            if name not in base:
                continue
            for spec in requirement.specifier:
                if spec.operator == "<" and base[name].contains(Version(spec.version), prereleases=True):
                    looser.append(f"{distribution} needs {requirement}, the base allows {name}{base[name]}")
    assert looser == [], looser
