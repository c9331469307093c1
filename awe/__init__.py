"""AWE: an interactive processing environment for astronomers.

``from awe import dpu`` gives the session's :class:`awe.dpu.Processor`, created on first use
and then shared (the ``awe>`` prompt binds the same object to ``dpu``). The class itself is
imported with ``from awe.dpu import Processor``. Nothing heavy is imported until needed, so
``import awe`` is cheap.

This file is also the composition root: it tells :mod:`awe.context` (the bottom module the
lower layers ask for defaults) how to open the session and where an instrument's nights
end, so that no lower layer imports the session or the instrument files upwards. Nothing
inside ``awe`` imports this package itself.
"""

import sys
import types
from datetime import date, datetime

from awe import context

__version__ = "0.1.0"


def _session_processor() -> context.Session:
    from awe.startup import session_processor

    return session_processor()


def _site_midnight(instrument: str, night: date) -> datetime:
    from awe.data.instruments import get_instrument

    return get_instrument(instrument).site.midnight(night)


context.provide(open_session=_session_processor, site_midnight=_site_midnight)


class _AweModule(types.ModuleType):
    """Makes ``awe.dpu`` the session Processor, although ``awe/dpu/`` is also a subpackage:
    the import system's binding of that subpackage onto ``awe`` is ignored, while
    ``from awe.dpu import Processor`` keeps working through ``sys.modules``."""

    @property
    def dpu(self):
        return _session_processor()

    @dpu.setter
    def dpu(self, value: object) -> None:
        if not isinstance(value, types.ModuleType):
            raise AttributeError(
                "awe.dpu is the session's Processor; for another one, create it: "
                "from awe.dpu import Processor; my_dpu = Processor(...)"
            )


sys.modules[__name__].__class__ = _AweModule
