"""Users created without an address get one at the machine's host name, as WildDuck does."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import make_config

from wildpy.runtime import open_runtime
from wildpy.services.account_inputs import NewUser


async def test_default_domain_is_the_host_name(mongo_uri: str, tmp_path: Path) -> None:
    config = make_config(mongo_uri, tmp_path).with_overrides({"emailDomain": ""})
    async with open_runtime(config) as runtime:
        user = await runtime.users.create(NewUser(username="hostless", password=False))
        address = (await runtime.users.get(user))["address"]
        # gethostname, not getfqdn: on a machine without DNS for itself getfqdn says localhost
        assert address == f"hostless@{socket.gethostname().lower()}"
        await runtime.database.drop_all()
