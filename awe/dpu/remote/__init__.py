"""Reaching a DPU's machine: running commands and moving files, here or over SSH, through
one small interface (:class:`awe.dpu.remote.shell.Shell`)."""
