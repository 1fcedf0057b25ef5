"""Delivery of outbox notices: claiming, sending with failover, receipts, relay, deadlines."""
