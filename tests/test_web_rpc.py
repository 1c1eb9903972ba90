"""JSON-RPC and XML-RPC dispatchers with real clients: ``xmlrpc.client.ServerProxy``,
``http.client`` with JSON bodies; malformed, hostile and oversize calls."""

from __future__ import annotations

import http.client
import json
import xmlrpc.client
from typing import Any

import pytest

from _web_support import serve
from netcomp import Component
from netcomp.web import JSONRPC, XMLRPC, HTTPLimits
from netcomp.web._xmlrpc import MAX_DEPTH, parse_call


class Maths(Component):
    channel = "maths"

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def nothing(self) -> None:
        return None

    def fail(self) -> None:
        raise RuntimeError("a secret detail")

    def unsendable(self) -> Any:
        return object()

    async def later(self, x: int) -> int:
        return x * 2


def rpc_site(**options: Any) -> Any:
    return serve(
        Maths(),
        JSONRPC("/json", rpc_channel="maths"),
        XMLRPC("/xml", rpc_channel="maths"),
        JSONRPC("/only", rpc_channel="maths", methods=["add"]),
        check_errors=False,
        **options,
    )


def post(port: int, path: str, body: bytes, method: str = "POST") -> tuple[int, Any, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(method, path, body, {"Content-Type": "application/json"})
    reply = connection.getresponse()
    data = reply.read()
    connection.close()
    kind = reply.getheader("Content-Type") or ""
    return reply.status, json.loads(data) if "json" in kind and data else None, data


# ------------------------------------------------------------------ XML-RPC
def test_xmlrpc_with_server_proxy() -> None:
    with rpc_site() as site:
        proxy = xmlrpc.client.ServerProxy(site.url + "/xml", allow_none=True)
        assert proxy.add(1, 2) == 3
        assert proxy.add("a", "b") == "ab"
        assert proxy.add([1], [2]) == [1, 2]
        assert proxy.nothing() is None
        assert proxy.later(21) == 42
        for name, code in (("missing", -32601), ("close", -32601), ("_private", -32601)):
            with pytest.raises(xmlrpc.client.Fault) as fault:
                getattr(proxy, name)()
            assert fault.value.faultCode == code
        with pytest.raises(xmlrpc.client.Fault) as fault:
            proxy.add(1)
        assert fault.value.faultCode == -32602
        with pytest.raises(xmlrpc.client.Fault) as fault:
            proxy.fail()
        assert fault.value.faultCode == -32603
        assert "secret" not in fault.value.faultString
        with pytest.raises(xmlrpc.client.Fault) as fault:
            proxy.unsendable()
        assert fault.value.faultCode == -32603
        proxy("close")()


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<methodCall><methodName>add</methodName><params>
<param><value><string>&lol3;</string></value></param>
<param><value><string>x</string></value></param></params></methodCall>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE call [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>add</methodName><params>
<param><value><string>&secret;</string></value></param></params></methodCall>"""
DEEP = (
    b"<methodCall><methodName>add</methodName><params><param>"
    + b"<value><array><data>" * MAX_DEPTH
    + b"</data></array></value>" * MAX_DEPTH
    + b"</param></params></methodCall>"
)


@pytest.mark.parametrize(
    "body",
    [BOMB, XXE, DEEP, b"<methodCall>", b"not xml", b"<methodResponse/>", b"",
     b"<methodCall><methodName>add</methodName><params><param><value><int>x</int>"
     b"</value></param></params></methodCall>"],
)  # fmt: skip
def test_xmlrpc_refuses_hostile_and_malformed_calls(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_call(body)
    with rpc_site() as site:
        status, _, data = post(site.port, "/xml", body)
        assert status == 400
        with pytest.raises(xmlrpc.client.Fault) as fault:
            xmlrpc.client.loads(data)
        assert fault.value.faultCode == -32700
        proxy = xmlrpc.client.ServerProxy(site.url + "/xml")
        assert proxy.add(2, 2) == 4  # the server goes on
        proxy("close")()


def test_rpc_paths_take_post_only_and_bounded_bodies() -> None:
    with rpc_site() as site:
        status, _, _ = post(site.port, "/xml", b"", method="GET")
        assert status == 405
        big = b"<methodCall>" + b" " * (1024 * 1024) + b"</methodCall>"
        assert post(site.port, "/xml", big)[0] == 413
    with rpc_site(limits=HTTPLimits(max_body_size=1000)) as site:
        assert post(site.port, "/json", b"[" + b"1," * 1000 + b"1]")[0] == 413


# ----------------------------------------------------------------- JSON-RPC
def call(method: str, params: Any = (), ident: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": list(params), "id": ident}


def test_jsonrpc_calls() -> None:
    with rpc_site() as site:
        status, reply, _ = post(site.port, "/json", json.dumps(call("add", (1, 2))).encode())
        assert (status, reply) == (200, {"jsonrpc": "2.0", "result": 3, "id": 1})
        named = {"jsonrpc": "2.0", "method": "add", "params": {"a": 2, "b": 3}, "id": "x"}
        assert post(site.port, "/json", json.dumps(named).encode())[1]["result"] == 5
        status, reply, _ = post(site.port, "/json", json.dumps(call("nope")).encode())
        assert status == 200 and reply["error"]["code"] == -32601
        assert (
            post(site.port, "/json", json.dumps(call("add", (1,))).encode())[1]["error"]["code"]
            == -32602
        )
        failed = post(site.port, "/json", json.dumps(call("fail")).encode())[1]
        assert failed["error"] == {"code": -32603, "message": "internal error"}
        assert (
            post(site.port, "/only", json.dumps(call("later", (1,))).encode())[1]["error"]["code"]
            == -32601
        )  # not in methods=


def test_jsonrpc_batches_and_notifications() -> None:
    with rpc_site() as site:
        batch = [call("add", (1, 1), 1), {"jsonrpc": "2.0", "method": "add", "params": [0, 0]},
                 call("nope", (), 3), 42]  # fmt: skip
        status, reply, _ = post(site.port, "/json", json.dumps(batch).encode())
        assert status == 200
        assert [r.get("id") for r in reply] == [1, 3, None]
        assert reply[0]["result"] == 2 and reply[1]["error"]["code"] == -32601
        assert reply[2]["error"]["code"] == -32600
        only = [{"jsonrpc": "2.0", "method": "add", "params": [1, 2]}]
        assert post(site.port, "/json", json.dumps(only).encode())[0] == 204
        assert post(site.port, "/json", b"[]")[0] == 400
        too_many = [call("add", (1, 1), n) for n in range(JSONRPC.max_batch + 1)]
        assert post(site.port, "/json", json.dumps(too_many).encode())[0] == 400


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"[" * 100_000, -32700),  # deep nesting: a parse error, not a crash
        (b"\xff\xfe", -32700),
        (b'"a string"', -32600),
        (b'{"jsonrpc": "1.5", "method": "add", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": 5, "id": 1}', -32600),
    ],
)
def test_jsonrpc_malformed_is_400(body: bytes, code: int) -> None:
    with rpc_site() as site:
        status, reply, _ = post(site.port, "/json", body)
        assert status == 400
        assert reply["error"]["code"] == code and reply["id"] in (None, 1)


def test_jsonrpc_1_0_shape_for_circuits_clients() -> None:
    with rpc_site() as site:
        old = {"method": "add", "params": [2, 2], "id": 7}
        status, reply, _ = post(site.port, "/json", json.dumps(old).encode())
        assert (status, reply) == (200, {"result": 4, "error": None, "id": 7})


def test_a_streamed_call_is_read_no_further_than_max_body() -> None:
    limits = HTTPLimits(max_buffered_body=1024)
    with rpc_site(limits=limits) as site:
        big = json.dumps(call("add", ("x" * 2_000_000, "y"))).encode()
        assert post(site.port, "/json", big)[0] == 413
        small = json.dumps(call("add", ("x" * 5000, "y"))).encode()  # streamed, in bounds
        assert post(site.port, "/json", small)[1]["result"] == "x" * 5000 + "y"
