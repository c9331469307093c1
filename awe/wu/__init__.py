"""POGS work units: runs, the model library, galaxy registration, fits2wu, validation and
assimilation (see docs/workunits.md). The fit itself is :mod:`awe.science.sed`."""
