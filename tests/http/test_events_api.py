import json

from tests.helpers import Gateway, event


async def test_probe(gateway: Gateway) -> None:
    b = event("dossier.received")
    b["occurred_at"] = "9999-12-31T23:59:59-23:59"
    s, body, r = await gateway.post(b)
    print(s, body)
    b = event("dossier.received", id="x2")
    s, body, r = await gateway.post(b)
    print(s, body)
    raw = json.dumps({"a": "x" * 70000}).encode()
    r = await gateway.post_raw("/v1/events", raw)
    print(r.status, r.headers.get("Content-Type"), await r.text())
    raw = b'{"a": NaN}'
    r = await gateway.post_raw("/v1/events", raw)
    print(r.status, r.headers.get("Content-Type"), await r.text())
    raw = b'{"a": "\xff"}'
    r = await gateway.post_raw("/v1/events", raw)
    print(r.status, r.headers.get("Content-Type"), await r.text())
    r = await gateway.client.post("/v1/events", data=b"{}", headers={"Content-Type": "text/plain"})
    print(r.status, r.headers.get("Content-Type"), await r.text())
    s, b = await gateway.get("/v1/dossiers/abc")
    print(s, b)
    r = await gateway.client.get("/v1/dossiers/abc")
    print(r.status, await r.text())
