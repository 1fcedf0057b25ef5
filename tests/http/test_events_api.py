from tests.helpers import Gateway, event


async def test_probe(gateway: Gateway) -> None:
    b = event("dossier.received")
    s, body, r = await gateway.post(b)
    print(s, body["dossier"])
    b = event("dossier.processing")
    del b["dossier"]["due_at"]
    s, body, r = await gateway.post(b)
    print(s, body["dossier"])
    s, body, r = await gateway.post(b)
    print(s, body["dossier"])
    s, body = await gateway.check_pause()
    print(s, body)
    s, body, r = await gateway.post(event("dossier.consultation_requested"))
    s, body = await gateway.check_pause()
    print(s, body)
