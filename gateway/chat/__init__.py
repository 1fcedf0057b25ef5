"""The gateway's side of the OA chat: inbound queue, the bot's ports, outbound messages."""
