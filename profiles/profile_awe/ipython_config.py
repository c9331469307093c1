"""IPython configuration of the AWE profile: the ``awe> `` prompt.

Installed into your IPython directory by ``awe profile install``; edit freely, AWE does not
overwrite it (``awe profile install --force`` restores the shipped version).
"""

c = get_config()  # noqa: F821 - provided by IPython when it loads this file
c.TerminalInteractiveShell.prompts_class = "awe.prompt.AwePrompts"
c.TerminalIPythonApp.display_banner = True
c.InteractiveShell.separate_in = ""
