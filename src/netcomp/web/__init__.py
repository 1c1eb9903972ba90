"""netcomp.web: an HTTP/1.1 server, URL dispatch to controllers, static files, WSGI and
WebSockets.

A sans-IO protocol layer over httptools (llhttp) with netcomp's own limits and RFC 9112
rules, glued to the net layer's TCP/TLS server; WebSockets (RFC 6455, permessage-deflate)
framed by wsproto, on the same server and as a client.
"""

from ._compat_errors import forbidden, httperror, notfound, redirect
from ._controllers import Controller, JSONController, expose
from ._dispatcher import Dispatcher
from ._errors import (
    BadRequest,
    Forbidden,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    ProtocolError,
    Redirect,
)
from ._events import request
from ._headers import Headers
from ._limits import HTTPLimits
from ._messages import Body, EndOfMessage, RequestHead
from ._protocol import ServerProtocol
from ._request import BodyStream, Request, UploadedFile
from ._response import Response
from ._server import BaseServer, Server
from ._static import Static
from ._wsclient import HandshakeError, WebSocketClient
from ._wsgi import WSGIGateway
from ._wslimits import WebSocketLimits
from ._wsserver import WebSocketsDispatcher

__all__ = [
    "BadRequest",
    "BaseServer",
    "Body",
    "BodyStream",
    "Controller",
    "Dispatcher",
    "EndOfMessage",
    "Forbidden",
    "HTTPError",
    "HTTPLimits",
    "HandshakeError",
    "Headers",
    "JSONController",
    "MethodNotAllowed",
    "NotFound",
    "ProtocolError",
    "Redirect",
    "Request",
    "RequestHead",
    "Response",
    "Server",
    "ServerProtocol",
    "Static",
    "UploadedFile",
    "WSGIGateway",
    "WebSocketClient",
    "WebSocketLimits",
    "WebSocketsDispatcher",
    "expose",
    "forbidden",
    "httperror",
    "notfound",
    "redirect",
    "request",
]
