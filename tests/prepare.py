"""``make test`` runs this first: say which real services the suite will use, start the
local PostgreSQL cluster if it is down and this machine has one."""

from tests.services import postgres_url, redis_url

if __name__ == "__main__":
    redis, private = redis_url()
    print(f"tests: Redis at {redis}" + (" (a private redis-server)" if private else ""))
    if private:
        private.stop()
    pg, why = postgres_url()
    print(f"tests: PostgreSQL at {pg}" if pg else f"tests: PostgreSQL tests will be SKIPPED: {why}")
