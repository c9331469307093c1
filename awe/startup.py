"""What happens when an AWE session starts: the banner and the session's Processor.

Shared by the ``awe>`` prompt (the IPython profile's startup file) and by
``from awe import dpu`` in notebooks and scripts, so both get the same, single Processor.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from awe.dpu.processor import Processor
    from awe.env import Env

WELCOME = "Welcome to the AWE Environment"
BANNER_WIDTH = 72

_processor: Processor | None = None


def session_processor() -> Processor:
    """The session's Processor, created on first call (configuration warnings shown once)."""
    global _processor
    if _processor is None:
        from awe.dpu.processor import Processor
        from awe.env import load_env

        env = load_env()
        for warning in env.warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
        _processor = Processor(env)
    return _processor


def profile_lines(env: Env) -> list[str]:
    """The ``Current profile:`` block of the banner (database password masked)."""
    from awe.database_url import mask_url

    return [
        "Current profile:",
        f"- username : {env.username}",
        f"- database : {mask_url(env.database_url)}",
        f"- project  : {env.project}",
        f"- dpu      : {env.dpu_name}",
    ]


def start_session(shell: Any) -> None:
    """Print the banner and bind ``dpu`` (and ``Processor``) in the user's namespace."""
    from awe.dpu.pars import Pars
    from awe.dpu.processor import Processor
    from awe.errors import AweError

    print(WELCOME.center(BANNER_WIDTH).rstrip())
    print("Initializing Distributed Processing Unit...")
    try:
        dpu = session_processor()
    except AweError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        print(
            "dpu was not created. Fix the setting above, then run: dpu = Processor()",
            file=sys.stderr,
        )
        shell.push({"Processor": Processor, "Pars": Pars})
        return
    print("\n".join(profile_lines(dpu.env)))
    shell.push({"dpu": dpu, "Processor": Processor, "Pars": Pars})
