"""An agency's client for a lapor deployment: read the complaints disposed to your unit.

Needs only nats-py (with its extras for nkeys and WebSocket) and the standard library::

    pip install 'nats-py[nkeys,aiohttp]'
    python agency_client.py --server wss://nats.example.go.id --opd dpupr --seed dpupr.nk

The operator of the deployment gives you three things (``lapor agency add`` prints them):
the server address (``wss://…``: NATS over WebSocket and TLS on port 443; or
``tls://host:4222``), your unit's code (``--opd``) and a seed file (``dpupr.nk``, the
secret half of your nkey: keep it like a password, readable by you alone). Your unit reads
one durable pull consumer, ``agency_<opd>`` on the stream ``<ROOT>_AGENCY`` (``--root``,
``lapor`` unless the deployment says otherwise), filtered by the deployment to your
subjects ``<root>.agency.<opd>.>``. You may bind to it, fetch from it and acknowledge
what you fetched; nothing else. In particular:

* connect with the inbox prefix ``_INBOX_<opd>``: replies on any other prefix are refused;
* do not create consumers (refused): the deployment made yours.

Every message is one event, a JSON envelope: ``type``, ``complaint_id`` (the tracking
ID), ``occurred_at``, ``payload``. The first of a complaint is
``agency.complaint_assigned`` (its title, text, category and place: never the reporter's
identity); then whatever happens to it while your unit holds it
(``complaint.followed_up``, ``complaint.reporter_replied``, ``complaint.rated``,
``complaint.deadline_warned``, ``complaint.closed``, ...), or
``complaint.authority_declined`` when it is taken away. This client prints one line per
event and acknowledges it; replace :func:`print_event` with what your unit does (write to
your own system, open a ticket). An event your handler fails on is not acknowledged: it
comes again after a delay. Acknowledged events do not come again: the consumer
remembers where you are, across restarts of this client.

Follow-ups and answers are not sent through NATS: officers post them to the tracker's
HTTP API with a token from the operator (``lapor token agency <opd>``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import nats
import nats.errors
import nats.js.errors

RETRY_DELAY_SECONDS = 30
"""How long an event the handler failed on waits before it is delivered again."""


class AccessRefused(Exception):
    """The server did not let this client read its consumer (wrong seed, revoked
    credential, wrong unit code or inbox prefix, or no consumer made for the unit)."""


def stream_name(root: str) -> str:
    """The deployment's agency stream: ``LAPOR_AGENCY`` for the root ``lapor``."""
    return root.upper().replace(".", "_").replace("-", "_") + "_AGENCY"


def consumer_name(opd: str) -> str:
    return f"agency_{opd}"


def inbox_prefix(opd: str) -> str:
    return f"_INBOX_{opd}"


def describe(event: dict[str, Any]) -> str:
    """One line for an event: when, which complaint, what."""
    payload = event.get("payload") or {}
    head = f"{event.get('occurred_at', '?')} {event.get('complaint_id', '?')} {event.get('type')}"
    if event.get("type") == "agency.complaint_assigned":
        where = (payload.get("location") or {}).get("kecamatan")
        detail = f"{payload.get('title')!r} ({payload.get('category') or 'no category'}"
        detail += f", {where})" if where else ")"
        if payload.get("confidential"):
            detail += " [confidential]"
        return f"{head}: {detail}"
    for field in ("message", "resolution", "reason", "stars", "step"):
        if field in payload:
            return f"{head}: {field} {payload[field]!r}"
    return head


def print_event(event: dict[str, Any]) -> None:
    print(describe(event), flush=True)


async def follow(
    server: str,
    opd: str,
    seed_file: str,
    *,
    root: str = "lapor",
    handle: Callable[[dict[str, Any]], Any] = print_event,
    batch: int = 10,
    wait: float = 5.0,
    stop_when_idle: bool = False,
    max_messages: int | None = None,
) -> int:
    """Read ``opd``'s events, hand each to ``handle`` and acknowledge it.

    Runs until interrupted; or, with ``stop_when_idle``, until nothing came for ``wait``
    seconds; or after ``max_messages``. Returns how many events were handled. Raises
    :class:`AccessRefused` if the server does not let it read the consumer."""
    refused: list[str] = []

    async def on_error(e: Exception) -> None:
        if "permissions violation" in str(e).lower() or "authorization" in str(e).lower():
            refused.append(str(e))
        print(f"nats: {e}", file=sys.stderr)

    try:
        nc = await nats.connect(
            server,
            nkeys_seed=seed_file,
            inbox_prefix=inbox_prefix(opd),
            name=f"agency-{opd}",
            error_cb=on_error,
            # A long-running reader keeps trying while the server restarts; a one-off
            # run gives up instead of waiting for ever.
            max_reconnect_attempts=0 if stop_when_idle else -1,
            allow_reconnect=not stop_when_idle,
            connect_timeout=wait,
        )
    except nats.errors.NoServersError as e:
        raise AccessRefused(f"cannot connect to {server}: {'; '.join(refused) or e}") from e
    stream, durable = stream_name(root), consumer_name(opd)
    try:
        js = nc.jetstream(timeout=wait)
        try:
            # Allowed for one's own consumer only: a clear answer before reading.
            await js.consumer_info(stream, durable)
        except (nats.errors.TimeoutError, nats.js.errors.NotFoundError) as e:
            why = "; ".join(refused) or repr(e)
            raise AccessRefused(f"cannot read {durable} on {stream}: {why}") from e
        sub = await js.pull_subscribe_bind(durable, stream=stream)
        handled = 0
        while max_messages is None or handled < max_messages:
            want = batch if max_messages is None else min(batch, max_messages - handled)
            try:
                msgs = await sub.fetch(want, timeout=wait)
            except nats.errors.TimeoutError:
                if stop_when_idle:
                    break
                continue
            for msg in msgs:
                try:
                    handle(json.loads(msg.data))
                except Exception as e:  # the handler's failure: try it again later
                    print(f"not acknowledged ({e!r}): {msg.subject}", file=sys.stderr)
                    await msg.nak(delay=RETRY_DELAY_SECONDS)
                    continue
                await msg.ack_sync()
                handled += 1
        return handled
    finally:
        await nc.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="e.g. wss://nats.example.go.id")
    parser.add_argument("--opd", required=True, help="your unit's code, e.g. dpupr")
    parser.add_argument("--seed", required=True, help="your nkey seed file (<opd>.nk)")
    parser.add_argument("--root", default="lapor", help="the deployment's subject root")
    parser.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="SECONDS",
        help="stop once nothing came for SECONDS (default: run until interrupted)",
    )
    args = parser.parse_args(argv)
    idle = args.exit_when_idle
    try:
        handled = asyncio.run(
            follow(
                args.server,
                args.opd,
                args.seed,
                root=args.root,
                wait=idle or 5.0,
                stop_when_idle=idle is not None,
            )
        )
    except AccessRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    print(f"{handled} events handled", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
