"""IPython profiles shipped with AWE (installed as the package ``awe.profiles``).

``profile_awe/`` is copied into the IPython directory by ``awe profile install`` (and by
``awe`` on its first run). Its files are thin: the logic lives in :mod:`awe.startup`, so an
upgrade of AWE does not require reinstalling the profile.
"""
