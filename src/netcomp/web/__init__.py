"""netcomp.web: an HTTP/1.1 server, URL dispatch to controllers, static files, WSGI and
WebSockets; sessions, authentication, gzip, JSON-RPC and XML-RPC, virtual hosts, an
access-log component and an HTTP client.

A sans-IO protocol layer over httptools (llhttp) with netcomp's own limits and RFC 9112
rules, glued to the net layer's TCP/TLS server; WebSockets (RFC 6455, permessage-deflate)
framed by wsproto, on the same server and as a client. The modules with circuits.web's
names (``client``, ``tools``, ``utils``, ``wsgi``, ``sessions``, ...) re-export these.
"""

from ._client import Client
from ._clientwire import ClientResponse, MalformedResponse
from ._compat_errors import forbidden, httperror, notfound, redirect
from ._controllers import Controller, Cookies, JSONController, expose
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
from ._events import request, response
from ._gzip import Gzip
from ._headers import Headers
from ._jsonrpc import JSONRPC
from ._limits import HTTPLimits
from ._logger import Logger
from ._messages import Body, EndOfMessage, RequestHead
from ._protocol import ServerProtocol
from ._request import BodyStream, Request, RequestBody, UploadedFile
from ._response import Response
from ._server import BaseServer, Server, ServerHTTP
from ._sessions import Session, Sessions
from ._sessionstores import FileStore, MemoryStore, Store
from ._static import Static
from ._vhosts import VirtualHosts
from ._wsclient import HandshakeError, WebSocketClient
from ._wsgi import WSGIGateway
from ._wsgiapp import Application
from ._wslimits import WebSocketLimits
from ._wsserver import WebSocketsDispatcher
from ._xmlrpc import XMLRPC

__all__ = [
    "JSONRPC",
    "XMLRPC",
    "Application",
    "BadRequest",
    "BaseServer",
    "Body",
    "BodyStream",
    "Client",
    "ClientResponse",
    "Controller",
    "Cookies",
    "Dispatcher",
    "EndOfMessage",
    "FileStore",
    "Forbidden",
    "Gzip",
    "HTTPError",
    "HTTPLimits",
    "HandshakeError",
    "Headers",
    "JSONController",
    "Logger",
    "MalformedResponse",
    "MemoryStore",
    "MethodNotAllowed",
    "NotFound",
    "ProtocolError",
    "Redirect",
    "Request",
    "RequestBody",
    "RequestHead",
    "Response",
    "Server",
    "ServerHTTP",
    "ServerProtocol",
    "Session",
    "Sessions",
    "Static",
    "Store",
    "UploadedFile",
    "VirtualHosts",
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
    "response",
]
