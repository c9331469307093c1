"""AWE's built-in processing sequences.

Every module in this package is imported by the sequence registry; sequences declare
themselves with :func:`awe.sequence.sequence`. Sequences are plain functions over data and
never import ``awe.dpu``.
"""
