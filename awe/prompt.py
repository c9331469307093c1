"""The ``awe> `` prompt for IPython's terminal (set by the AWE profile's config)."""

from IPython.terminal.prompts import Prompts
from pygments.token import Token

PROMPT = "awe> "


class AwePrompts(Prompts):
    """``awe> `` for input; results print bare, as in the Astro-WISE prompt."""

    def in_prompt_tokens(self):
        return [(Token.Prompt, PROMPT)]

    def out_prompt_tokens(self):
        return []
