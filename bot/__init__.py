"""The Zalo OA conversation logic: typed events in, replies out; no HTTP, SQL or Redis."""
