"""Routing rules in a NATS key-value bucket on the real JetStream: an operator publishes a
changed table and a watching router swaps it in; an invalid table never gets in."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from importlib.resources import files

import nats
import nats.js.errors
import pytest

from lapor.devtools.testing import eventually
from lapor.router.domain import RoutingTable
from lapor.router.rules_store import CHANGES, KEY, RulesStore
from lapor.services.settings import Settings
from lapor.shared.events import ComplaintReceived

PACKAGED = files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")


def changed(version: str) -> str:
    """The packaged table under another version, with "genangan" moved from DPUPR to BPBD."""
    text = re.sub(r'^version = ".*"$', f'version = "{version}"', PACKAGED, count=1, flags=re.M)
    for moved in ('"genangan",', '"tergenang",'):  # both read as "genang"
        assert moved in text
        text = text.replace(moved, "", 1)
    assert '"bpbd", ' in text
    return text.replace('"bpbd", ', '"bpbd", "genangan", ', 1)


PUDDLE = ComplaintReceived(title="Genangan air", body="Genangan air di depan rumah sejak pagi.")


@pytest.fixture
async def js(settings: Settings):
    nc = await nats.connect(settings.nats_url)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
async def bucket(settings: Settings, js):
    name = f"{settings.subject_root.upper()}_ROUTING_RULES"
    yield name
    with contextlib.suppress(nats.js.errors.NotFoundError, nats.js.errors.BucketNotFoundError):
        await js.delete_key_value(name)


async def test_a_published_table_reaches_the_watcher(js, bucket: str) -> None:
    assert await RulesStore.current(js, bucket) is None
    assert RoutingTable.load().decide(PUDDLE).opd == "dpupr"

    seen: list[RoutingTable] = []
    watching = asyncio.create_task(RulesStore.watch(js, bucket, seen.append))
    try:
        first = await RulesStore.publish(js, changed("2099.1.1"), bucket=bucket, author="ops-a")
        await eventually(
            lambda: _async(seen and seen[-1].version.startswith("2099.1.1+")), within=10
        )
        assert seen[-1].decide(PUDDLE).opd == "bpbd"

        second = await RulesStore.publish(js, changed("2099.1.2"), bucket=bucket, author="ops-b")
        assert second > first
        await eventually(lambda: _async(seen[-1].version.startswith("2099.1.2+")), within=10)

        current = await RulesStore.current(js, bucket)
        assert current is not None and current.version == seen[-1].version

        # The changes are recorded: who, which version, the text's hash.
        records = await RulesStore.changes(js, bucket)
        assert [(r.revision, r.author) for r in records] == [(first, "ops-a"), (second, "ops-b")]
        assert records[1].version == seen[-1].version
        assert records[1].sha == hashlib.sha256(changed("2099.1.2").encode()).hexdigest()
        kv = await js.key_value(bucket)
        assert (await kv.get(f"{CHANGES}.{second}")).value
        assert [e.revision for e in await kv.history(KEY)] == [first, second]
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


async def test_an_invalid_table_is_refused_and_ignored(js, bucket: str) -> None:
    seen: list[RoutingTable] = []
    watching = asyncio.create_task(RulesStore.watch(js, bucket, seen.append))
    try:
        good = await RulesStore.publish(js, changed("2099.2.1"), bucket=bucket, author="ops")
        await eventually(lambda: _async(len(seen) == 1), within=10)

        invalid = changed("2099.2.2").replace('code = "dlh"', 'code = "dinas_baru"', 1)
        with pytest.raises(ValueError, match="OPD registry"):
            await RulesStore.publish(js, invalid, bucket=bucket, author="ops")
        with pytest.raises(ValueError, match="TOML"):
            await RulesStore.publish(js, "version = ", bucket=bucket, author="ops")
        kv = await js.key_value(bucket)
        assert [e.revision for e in await kv.history(KEY)] == [good]

        # Put behind publish's back: the watcher logs it and keeps its table.
        await kv.put(KEY, invalid.encode())
        await kv.put(KEY, b"\xff\xfe not even text")
        current = await RulesStore.current(js, bucket)
        assert current is not None and current.version.startswith("2099.2.1+")

        # A later valid table still arrives, so the watcher lived through the bad ones.
        await RulesStore.publish(js, changed("2099.2.3"), bucket=bucket, author="ops")
        await eventually(lambda: _async(len(seen) == 2), within=10)
        assert [t.version.split("+")[0] for t in seen] == ["2099.2.1", "2099.2.3"]
        assert [r.version.split("+")[0] for r in await RulesStore.changes(js, bucket)] == [
            "2099.2.1",
            "2099.2.3",
        ]
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


async def test_publish_can_require_the_revision_it_replaces(js, bucket: str) -> None:
    first = await RulesStore.publish(
        js, changed("2099.3.1"), bucket=bucket, author="ops", expected_revision=0
    )
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await RulesStore.publish(
            js, changed("2099.3.2"), bucket=bucket, author="late", expected_revision=0
        )
    second = await RulesStore.publish(
        js, changed("2099.3.2"), bucket=bucket, author="ops", expected_revision=first
    )
    assert second > first
    assert [r.author for r in await RulesStore.changes(js, bucket)] == ["ops", "ops"]


async def _async(value):
    return value
