"""AWE profile startup: print the banner and create ``dpu``, the session's Processor."""

from awe.startup import start_session

start_session(get_ipython())  # noqa: F821 - provided by IPython
del start_session
