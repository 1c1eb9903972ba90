"""circuits' ``circuits.web.client``: the HTTP :class:`Client` component, its
``request(method, url, body=None, headers=None)`` event and ``parse_url``, over netcomp's
TCP client and llhttp (see ``netcomp.web.Client``)."""

from ._client import Client, request
from ._clientwire import ClientResponse, MalformedResponse, parse_url

__all__ = ["Client", "ClientResponse", "MalformedResponse", "parse_url", "request"]
