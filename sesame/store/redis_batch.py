"""Many calls of one Lua script in few round trips to Redis. Each call still runs alone and
atomically, in order, as it would sent by itself; a round trip of up to CHUNK calls pays
one write and one read instead of one of each per call (the gateway begins the downloads of
a batch so, see gateway.offloop's Batches).

What a round trip risks: should Redis stall past the socket timeout or the connection
drop while one is out, the calls Redis ran anyway stand, though their answers were lost
(one by one, that is the call in flight). So a round trip carries at most CHUNK calls, and
none is sent after one failed: every call left over gets its error, and runs nowhere.
"""

from __future__ import annotations

import copy
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

CHUNK = 8  # calls in one round trip
Call = tuple[list[str], list[str | int]]  # a call's keys and its arguments


def run_each(client: redis.Redis, script: Script, calls: list[Call]) -> list[Any]:
    """What each of ``calls`` of ``script`` returned, or the error it alone met, in
    order: a reply error for its call only; a failed round trip (the connection, a
    timeout) for its calls and every one after it, which are not sent. A script Redis does
    not know (not yet, or no more: a restart, SCRIPT FLUSH) is loaded, and the calls it
    refused run again: a call refused with NOSCRIPT never ran."""
    answers: list[Any] = []
    for first in range(0, len(calls), CHUNK):
        chunk = calls[first : first + CHUNK]
        try:
            got, failure = _reloading(client, script, chunk)
        except redis.RedisError as exc:
            got, failure = [copy.copy(exc) for _ in chunk], exc
        answers += got
        if failure is not None:
            return answers + [copy.copy(failure) for _ in calls[len(answers) :]]
    return answers


def _reloading(
    client: redis.Redis, script: Script, calls: list[Call]
) -> tuple[list[Any], redis.RedisError | None]:
    """One round trip of ``calls``, and one more for those refused with NOSCRIPT; with
    the error that failed that second one, if it did (the calls it carried get it too,
    and the answers of those that ran still stand)."""
    answers = _pipelined(client, script.sha, calls)
    missing = [number for number, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    if not missing:
        return answers, None
    try:
        client.script_load(script.script)
        again = _pipelined(client, script.sha, [calls[number] for number in missing])
    except redis.RedisError as exc:
        for number in missing:
            answers[number] = copy.copy(exc)
        return answers, exc
    for number, answer in zip(missing, again, strict=True):
        answers[number] = answer
    return answers, None


def _pipelined(client: redis.Redis, sha: str, calls: list[Call]) -> list[Any]:
    with client.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return list(pipe.execute(raise_on_error=False))
