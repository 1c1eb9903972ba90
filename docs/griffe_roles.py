"""A griffe extension (mkdocs.yml): the docstrings' reStructuredText roles as Markdown.

netcomp's docstrings say ``:class:`Recorder``` and ``:meth:`advance``` (Sphinx's roles,
which read well in ``help()``); Markdown would show the role's name as text. The site
shows the name as code: ``Recorder``. The docstrings themselves are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|data|attr|mod|exc|obj):`~?([^`]+)`")


def markdown_roles(text: str) -> str:
    """``:role:`name``` becomes ``name`` in backquotes (``~a.b`` keeps ``a.b``)."""
    return ROLE.sub(lambda match: f"`{match[1]}`", text)


class RolesAsCode(Extension):
    """Rewrites each object's docstring as it is loaded."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_roles(obj.docstring.value)
