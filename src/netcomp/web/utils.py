"""circuits' ``circuits.web.utils``: ``parse_qs``, ``compress`` (gzip, piece by piece),
``get_ranges`` (circuits' shape of a Range field) and ``is_unix_socket``, written for
netcomp (see ``netcomp.web._utils``)."""

from ._utils import compress, get_ranges, is_unix_socket, parse_qs

__all__ = ["compress", "get_ranges", "is_unix_socket", "parse_qs"]
