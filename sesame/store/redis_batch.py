"""Many calls of one Lua script in one round trip to Redis. Each call still runs alone and
atomically, in order, as it would sent by itself; the batch pays one write and one read
instead of one of each per call (the gateway begins the downloads of a batch so, see
gateway.offloop's Batches)."""

from __future__ import annotations

from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

Call = tuple[list[str], list[str | int]]  # a call's keys and its arguments


def run_each(client: redis.Redis, script: Script, calls: list[Call]) -> list[Any]:
    """What each of ``calls`` of ``script`` returned, or the reply error it alone met, in
    order; raises what fails them all (the connection). A script Redis does not know (not
    yet, or no more: a restart, SCRIPT FLUSH) is loaded, and the calls it refused run
    again: a call refused with NOSCRIPT never ran."""
    answers = _pipelined(client, script.sha, calls)
    missing = [number for number, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    if missing:
        client.script_load(script.script)
        again = _pipelined(client, script.sha, [calls[number] for number in missing])
        for number, answer in zip(missing, again, strict=True):
            answers[number] = answer
    return answers


def _pipelined(client: redis.Redis, sha: str, calls: list[Call]) -> list[Any]:
    with client.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return list(pipe.execute(raise_on_error=False))
