"""How the CLI prints problems: one line, coloured, the message exactly as written.

Messages carry text from outside (file paths, config values, regex patterns such as
``^[a-z][a-z0-9_]*$``) that Rich would otherwise read as markup and silently eat.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def error(console: Console, message: object) -> None:
    """Print ``error: <message>`` with the message verbatim."""
    console.print(Text.assemble(("error:", "red"), " ", str(message)), soft_wrap=True)


def warning(console: Console, message: object) -> None:
    """Print ``warning: <message>`` with the message verbatim."""
    console.print(Text.assemble(("warning:", "yellow"), " ", str(message)), soft_wrap=True)
