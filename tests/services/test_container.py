"""Services built for the CLI (serving=False) with Redis: alive to the servers while they run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from chatstream.config import Settings
from chatstream.services.container import Services
from chatstream.stores.answer_bus_redis import instance_key
from tests.support.redis_server import RedisProcess

pytestmark = pytest.mark.redis


def test_the_cli_announces_itself_so_servers_leave_its_document_jobs_alone(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis").start()
    client = redis.Redis.from_url(server.url)
    settings = Settings(data_dir=tmp_path / "data", redis_url=server.url, argon2_memory_kib=8192)

    async def main() -> None:
        services = await Services.start(settings, serving=False)
        try:
            key = instance_key(services.documents.instance_id)
            for _ in range(100):  # the liveness task's first write
                if client.exists(key):
                    break
                await asyncio.sleep(0.02)
            assert client.exists(key)
            assert services.bus is not None
            assert await services.bus.live_instances({services.documents.instance_id, "gone"}) == {
                services.documents.instance_id
            }
        finally:
            await services.close()
        assert not client.exists(key)  # gone at once when the CLI ends, not after the TTL

    try:
        asyncio.run(main())
    finally:
        client.close()
        server.stop()
