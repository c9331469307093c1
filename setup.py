"""Build script. Metadata and dependencies live in setup.cfg; this file only maps the
repository's top-level ``profiles/`` folder into the package as ``awe.profiles`` so the
IPython profile ships inside AWE (and ``awe`` can install it on first run)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["awe", "awe.*", "sequences", "sequences.*"]) + ["awe.profiles"],
    package_dir={"awe.profiles": "profiles"},
    package_data={
        "awe.db": ["migrations/script.py.mako"],
        "awe.data.instruments": ["*.json"],
        "awe.report": ["templates/*"],
        "awe.web": ["templates/*", "static/*"],
        "awe.wu": ["data/*.npz"],
        "awe.profiles": ["profile_awe/*.py", "profile_awe/startup/*.py"],
    },
)
