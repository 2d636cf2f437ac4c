"""``RedisJournal``: the journal of durable flows in Redis, under a store's namespace.

Every operation is one Lua script run by the server, so it is atomic: each
script checks everything first and writes only when every check passed (Redis
does not roll a script back). Concurrent calls from many processes are
serialised by the server; with ``appendfsync always`` Redis writes and fsyncs
its append-only file once per event-loop turn for every client served in it
(the server's own group commit), and a reply means the data is in the file.
The durability a reply stands for is the server's persistence setting.

Layout under ``<namespace>:journal:`` (one Redis server; not for Redis Cluster):
``seq`` (id counters), ``traces``, ``keys``, ``entries``, ``state``, ``rookery``,
``pending`` (undelivered Rookery ids), ``interrupts`` (hashes of JSON records),
and per-trace index sets ``te:``/``ts:``/``tp:``/``ti:<trace>``. ``load`` reads
it all in one script, a consistent view; settled traces are scanned too, so it
grows with the number of traces ever journaled.

It stays one module past ~400 lines: the Lua scripts and the calls that run
them are one protocol over the same keys.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from penguiflow._journal_steps import EncodedStep, derive_status, encode_inputs
from penguiflow.distributed._lease import DEFAULT_LEASE_S, JournalLease
from penguiflow.distributed._redis import redis_errors
from penguiflow.errors import InterruptTokenError, JournalConflict, JournalError, JournalInUse
from penguiflow.journal import (
    Acceptance,
    EdgeEntry,
    Input,
    InterruptRecord,
    JournalSnapshot,
    Outgoing,
    RookeryEntry,
    StateEntry,
    StateUpdate,
    StepResult,
    TraceRecord,
    encode_item,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisJournal"]

_SCRIPT = r"""
local P = KEYS[1]
local op = ARGV[1]
local a = cjson.decode(ARGV[2])
local null = cjson.null
local function str(t) return type(t) == 'string' end
local function next_id(field) return redis.call('HINCRBY', P .. 'seq', field, 1) end
local function touch(t)
  if str(t) and redis.call('HEXISTS', P .. 'traces', t) == 0 then
    redis.call('HSET', P .. 'traces', t, cjson.encode({c = 0, s = next_id('trace')}))
  end
end
local function cancelled(t)
  if not str(t) then return false end
  local raw = redis.call('HGET', P .. 'traces', t)
  return raw and cjson.decode(raw).c == 1
end
local function add_entry(edge, t, item, deadline)
  touch(t)
  local id = next_id('entry')
  redis.call('HSET', P .. 'entries', id, cjson.encode({edge, t, item, 0, deadline, null}))
  if str(t) then redis.call('SADD', P .. 'te:' .. t, id) end
  return id
end
local function del_entry(id)
  local raw = redis.call('HGET', P .. 'entries', id)
  if not raw then return end
  local t = cjson.decode(raw)[2]
  redis.call('HDEL', P .. 'entries', id)
  if str(t) then redis.call('SREM', P .. 'te:' .. t, id) end
end
local function add_rookery(t, items)
  local ids = {}
  for i, item in ipairs(items) do
    local id = next_id('rookery')
    redis.call('HSET', P .. 'rookery', id, cjson.encode({t = t, i = item, d = 0}))
    redis.call('SADD', P .. 'pending', id)
    if str(t) then redis.call('SADD', P .. 'tp:' .. t, id) end
    ids[i] = id
  end
  return ids
end
local function has_entry(id)
  return redis.call('HEXISTS', P .. 'entries', id) == 1
end

-- Ownership: a claimed journal's calls carry its owner token (ARGV[3]) and the
-- lease in ms (ARGV[4]). A call from anyone but the lease holder is refused
-- before it writes; the holder's calls renew the lease (a free lease is taken).
-- A released lease reads 'free:<token>' for one lease: a call of that token
-- still in flight runs without taking it again, anyone else may take it.
local tok = ARGV[3]
if tok and tok ~= '' then
  local okey = P .. 'owner'
  local cur = redis.call('GET', okey)
  if cur == 'free:' .. tok then
    if op == 'release' or op == 'renew' then return 'null' end
  elseif cur and cur ~= tok and string.sub(cur, 1, 5) ~= 'free:' then
    return redis.error_reply('PFJ_OWNER ' .. cur)
  elseif op == 'release' then
    redis.call('SET', okey, 'free:' .. tok, 'PX', tonumber(ARGV[4]))
    return 'null'
  else
    redis.call('SET', okey, tok, 'PX', tonumber(ARGV[4]))
    if op == 'renew' then return 'null' end
  end
end

if op == 'accept' then
  local out = {}
  for i, x in ipairs(a) do
    local edge, item, t, key, deadline = x[1], x[2], x[3], x[4], x[5]
    local dup = false
    if str(key) then
      local raw = redis.call('HGET', P .. 'keys', key)
      if raw then
        out[i] = {'dup', cjson.decode(raw).t}
        dup = true
      else
        redis.call('HSET', P .. 'keys', key, cjson.encode({t = t, s = next_id('key')}))
      end
    end
    if not dup then
      touch(t)
      if cancelled(t) then
        out[i] = {'cancelled', t}
      else
        out[i] = {'new', t, add_entry(edge, t, item, deadline)}
      end
    end
  end
  return cjson.encode(out)
elseif op == 'hold' then
  local raw = redis.call('HGET', P .. 'entries', a[1])
  if not raw then return redis.error_reply('PFJ_CONFLICT ' .. a[1]) end
  local e = cjson.decode(raw)
  e[4] = a[3]
  e[6] = a[2]
  redis.call('HSET', P .. 'entries', a[1], cjson.encode(e))
  return 'null'
elseif op == 'step' then
  local t, consumed = a[1], a[2]
  if cancelled(t) then
    if consumed ~= null then del_entry(consumed) end
    return cjson.encode({dropped = true})
  end
  if consumed ~= null and not has_entry(consumed) then
    return redis.error_reply('PFJ_CONFLICT ' .. consumed)
  end
  for _, token in ipairs(a[6]) do
    local raw = redis.call('HGET', P .. 'interrupts', token)
    if not raw or cjson.decode(raw).u == 1 then
      return redis.error_reply('PFJ_TOKEN ' .. token)
    end
  end
  -- Every check passed: only now write.
  if consumed ~= null then del_entry(consumed) end
  local ids = {}
  for i, o in ipairs(a[3]) do ids[i] = add_entry(o[1], o[3], o[2], o[4]) end
  touch(t)
  local rids = add_rookery(t, a[4])
  for _, s in ipairs(a[5]) do
    touch(s[1])
    local field = s[1] .. '\31' .. s[2]
    if s[3] == null then
      redis.call('HDEL', P .. 'state', field)
      redis.call('SREM', P .. 'ts:' .. s[1], field)
    else
      local raw = redis.call('HGET', P .. 'state', field)
      local seq = raw and cjson.decode(raw).s or next_id('state')
      redis.call('HSET', P .. 'state', field, cjson.encode({t = s[1], k = s[2], v = s[3], s = seq}))
      redis.call('SADD', P .. 'ts:' .. s[1], field)
    end
  end
  for _, token in ipairs(a[6]) do
    local r = cjson.decode(redis.call('HGET', P .. 'interrupts', token))
    r.u = 1
    redis.call('HSET', P .. 'interrupts', token, cjson.encode(r))
  end
  return cjson.encode({ids = ids, rids = rids})
elseif op == 'deliver' then
  local raw = redis.call('HGET', P .. 'rookery', a[1])
  if not raw then return redis.error_reply('PFJ_ROOKERY ' .. a[1]) end
  local r = cjson.decode(raw)
  if r.d == 1 then return 'false' end
  r.d = 1
  redis.call('HSET', P .. 'rookery', a[1], cjson.encode(r))
  redis.call('SREM', P .. 'pending', a[1])
  if str(r.t) then redis.call('SREM', P .. 'tp:' .. r.t, a[1]) end
  return 'true'
elseif op == 'park' then
  local token, t, node, payload, entry = a[1], a[2], a[3], a[4], a[5]
  if redis.call('HEXISTS', P .. 'interrupts', token) == 1 then
    return redis.error_reply('PFJ_PARKED ' .. token)
  end
  if cancelled(t) then return cjson.encode({dropped = true}) end
  if entry ~= null and not has_entry(entry) then
    return redis.error_reply('PFJ_CONFLICT ' .. entry)
  end
  touch(t)
  local record = {s = next_id('interrupt'), t = t, n = node, p = payload, e = entry,
                  v = null, r = 0, u = 0}
  redis.call('HSET', P .. 'interrupts', token, cjson.encode(record))
  if str(t) then redis.call('SADD', P .. 'ti:' .. t, token) end
  return cjson.encode({rids = add_rookery(t, a[6])})
elseif op == 'resume' then
  local raw = redis.call('HGET', P .. 'interrupts', a[1])
  if not raw then return redis.error_reply('PFJ_UNKNOWN ' .. a[1]) end
  local r = cjson.decode(raw)
  if r.r == 1 or r.u == 1 then return redis.error_reply('PFJ_RESUMED ' .. a[1]) end
  r.v = a[2]
  r.r = 1
  redis.call('HSET', P .. 'interrupts', a[1], cjson.encode(r))
  return cjson.encode(r)
elseif op == 'cancel' then
  local t = a[1]
  if cancelled(t) then return 'false' end
  touch(t)
  local tr = cjson.decode(redis.call('HGET', P .. 'traces', t))
  tr.c = 1
  redis.call('HSET', P .. 'traces', t, cjson.encode(tr))
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'te:' .. t)) do
    redis.call('HDEL', P .. 'entries', id)
  end
  for _, field in ipairs(redis.call('SMEMBERS', P .. 'ts:' .. t)) do
    redis.call('HDEL', P .. 'state', field)
  end
  for _, token in ipairs(redis.call('SMEMBERS', P .. 'ti:' .. t)) do
    redis.call('HDEL', P .. 'interrupts', token)
  end
  -- Its Rookery items not fetched yet are dropped (cancel drops them from
  -- Rookery): marked delivered, so recover() never hands them out.
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'tp:' .. t)) do
    local raw = redis.call('HGET', P .. 'rookery', id)
    if raw then
      local r = cjson.decode(raw)
      r.d = 1
      redis.call('HSET', P .. 'rookery', id, cjson.encode(r))
    end
    redis.call('SREM', P .. 'pending', id)
  end
  redis.call('DEL', P .. 'te:' .. t, P .. 'ts:' .. t, P .. 'ti:' .. t, P .. 'tp:' .. t)
  return 'true'
elseif op == 'load' then
  local pending = redis.call('SMEMBERS', P .. 'pending')
  local rookery = {}
  for i, id in ipairs(pending) do
    rookery[i] = {id, redis.call('HGET', P .. 'rookery', id)}
  end
  return cjson.encode({
    entries = redis.call('HGETALL', P .. 'entries'),
    state = redis.call('HGETALL', P .. 'state'),
    rookery = rookery,
    interrupts = redis.call('HGETALL', P .. 'interrupts'),
    traces = redis.call('HGETALL', P .. 'traces'),
    keys = redis.call('HGETALL', P .. 'keys'),
  })
end
return redis.error_reply('PFJ_OP ' .. op)
"""


def _list(value: Any) -> list[Any]:
    # cjson encodes an empty Lua table as {}: read it as an empty array.
    return value if isinstance(value, list) else []


def _pairs(flat: Any) -> list[tuple[str, Any]]:
    items = _list(flat)
    return [(items[i], json.loads(items[i + 1])) for i in range(0, len(items), 2)]


def _deadline(value: float | None) -> str | None:
    # As text: Lua's cjson keeps 14 significant digits, too few for epoch microseconds.
    return None if value is None else repr(float(value))


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


class RedisJournal:
    """The ``penguiflow.journal.Journal`` of a ``RedisStateStore`` (``store.journal``).

    Get it from the store. Each operation is one server-side script (atomic);
    a failed call raises ``penguiflow.errors.JournalError`` (the client's error
    as ``__cause__``), and a script refuses before writing anything.

    .. versionadded:: 3.0
    """

    def __init__(self, redis: Redis, *, namespace: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:journal:"
        self._script = redis.register_script(_SCRIPT)
        self._lease = JournalLease(lease_s)

    def __repr__(self) -> str:
        return f"RedisJournal(prefix={self._prefix!r})"

    # --- ownership (penguiflow.distributed._lease) ------------------------------------

    def claim(self) -> None:
        """Make the calling durable flow the namespace's one owner (``run()``).

        No I/O here: the flow's first journal call takes the lease, waiting up to
        ``lease_s`` for a crashed owner's to expire; a live owner's makes that
        call raise ``JournalInUse``.

        Raises:
            penguiflow.errors.JournalInUse: a running flow of this process owns it.
        """
        self._lease.claim(f"journal {self._prefix!r}")

    def unclaim(self) -> Awaitable[None] | None:
        """Let go (``stop()``): the heartbeat ends; await the result to free the lease."""
        return self._lease.release(self._run)

    async def _run(self, op: str, token: str, args: Any = ()) -> Any:
        errors = redis_errors()
        try:
            return await self._script(
                keys=[self._prefix],
                args=[op, json.dumps(args), token, self._lease.lease_ms],
            )
        except errors as exc:
            raise self._translate(exc) from exc

    async def _renew(self, token: str) -> None:
        await self._run("renew", token)

    async def _call(self, op: str, args: Any) -> Any:
        reply = await self._lease.run(lambda token: self._run(op, token, args), self._renew)
        return json.loads(reply)

    def _translate(self, exc: Exception) -> JournalError:
        code, _, detail = str(exc).partition(" ")
        if code == "PFJ_OWNER":
            return JournalInUse(
                f"journal {self._prefix!r} on Redis is owned by another running durable "
                f"flow ({detail}); nothing of this call was stored",
                owner=detail,
            )
        if code == "PFJ_CONFLICT":
            return JournalConflict(
                f"edge entry {detail} is not in the journal (consumed already?)",
                entry_id=int(detail),
            )
        if code in ("PFJ_TOKEN", "PFJ_UNKNOWN", "PFJ_RESUMED", "PFJ_PARKED"):
            state = {
                "PFJ_TOKEN": "unknown or already used",
                "PFJ_UNKNOWN": "unknown",
                "PFJ_RESUMED": "already resumed",
                "PFJ_PARKED": "already parked",
            }[code]
            return InterruptTokenError(f"interrupt token {detail!r} is {state}", token=detail)
        if code == "PFJ_ROOKERY":
            return JournalError(f"Rookery item {detail} is not in the journal")
        return JournalError(
            f"journal call on Redis ({self._prefix}) failed, nothing of it was stored: {exc}"
        )

    # --- Journal --------------------------------------------------------------------

    async def accept(self, inputs: Sequence[Input]) -> list[Acceptance]:
        """Journal new inputs; a known idempotency key is reported, not added."""
        encoded = [
            [i.edge, i.item, i.trace_id, i.key, _deadline(i.deadline)]
            for i in encode_inputs(inputs)
        ]
        if not encoded:
            return []
        results = []
        for kind, trace_id, *rest in await self._call("accept", encoded):
            if kind == "dup":
                results.append(Acceptance(trace_id, None, duplicate=True))
            elif kind == "cancelled":
                results.append(Acceptance(trace_id, None, cancelled=True))
            else:
                results.append(Acceptance(trace_id, int(rest[0])))
        return results

    async def hold(self, entry_id: int, *, node: str, attempt: int = 0) -> None:
        """Record that ``node`` has the entry in hand at retry ``attempt``."""
        await self._call("hold", [entry_id, node, attempt])

    async def commit_step(
        self,
        trace_id: str | None,
        *,
        consumed: int | None = None,
        produced: Sequence[Outgoing | tuple[str, Any]] = (),
        rookery: Sequence[Any] = (),
        state: Sequence[StateUpdate] = (),
        interrupts_used: Sequence[str] = (),
    ) -> StepResult:
        """Record one step: its input consumed and its outputs, together."""
        step = EncodedStep.build(
            trace_id,
            consumed=consumed,
            produced=produced,
            rookery=rookery,
            state=state,
            interrupts_used=interrupts_used,
        )
        reply = await self._call(
            "step",
            [
                step.trace_id,
                step.consumed,
                [[o.edge, o.item, o.trace_id, _deadline(o.deadline)] for o in step.produced],
                list(step.rookery),
                [[s.trace_id, s.key, s.value] for s in step.state],
                list(step.interrupts_used),
            ],
        )
        if reply.get("dropped"):
            return StepResult(dropped=True)
        return StepResult(
            tuple(int(i) for i in _list(reply["ids"])),
            tuple(int(i) for i in _list(reply["rids"])),
        )

    async def mark_delivered(self, rookery_id: int) -> bool:
        """Mark a Rookery item delivered; ``False`` if it already was."""
        return bool(await self._call("deliver", [rookery_id]))

    async def park(
        self,
        token: str,
        *,
        trace_id: str | None,
        node: str,
        payload: Any,
        entry_id: int | None = None,
        rookery: Sequence[Any] = (),
    ) -> StepResult:
        """Journal an interrupt and its Rookery items."""
        encoded = encode_item(payload)
        items = [encode_item(item) for item in rookery]
        reply = await self._call("park", [token, trace_id, node, encoded, entry_id, items])
        if reply.get("dropped"):
            return StepResult(dropped=True)
        return StepResult(rookery_ids=tuple(int(i) for i in _list(reply["rids"])))

    async def resume(self, token: str, value: Any) -> InterruptRecord:
        """Store the value a parked interrupt resumes with."""
        r = await self._call("resume", [token, encode_item(value)])
        return _interrupt(token, r)

    async def cancel(self, trace_id: str) -> bool:
        """Cancel a trace for good; ``False`` if it already was."""
        return bool(await self._call("cancel", [trace_id]))

    async def load(self) -> JournalSnapshot:
        """Everything unfinished, in journal order, read in one script (a consistent view)."""
        return _snapshot(await self._call("load", []))

    async def traces(self, *, include_finished: bool = False) -> list[TraceRecord]:
        """The traces not settled (or all: ``include_finished``), oldest first."""
        raw = await self._call("load", [])
        return _trace_records(raw, _snapshot_parts(raw), include_finished)

    async def unfinished_traces(self) -> list[str]:
        """Ids of the traces not settled, oldest first."""
        return [r.trace_id for r in await self.traces()]

    async def parked_traces(self) -> list[str]:
        """Ids of the traces with an interrupt waiting for ``resume``."""
        return [r.trace_id for r in await self.traces() if r.status == "parked"]


def _interrupt(token: str, r: dict[str, Any]) -> InterruptRecord:
    return InterruptRecord(
        token,
        r["t"],
        r["n"],
        r["p"],
        None if r["e"] is None else int(r["e"]),
        r["v"],
        r["r"] == 1,
        r["u"] == 1,
    )


_Parts = tuple[
    tuple[EdgeEntry, ...],
    tuple[StateEntry, ...],
    tuple[RookeryEntry, ...],
    tuple[InterruptRecord, ...],
]


def _snapshot_parts(raw: dict[str, Any]) -> _Parts:
    entries = sorted(
        (
            EdgeEntry(int(i), e[0], e[1], e[2], int(e[3]), _float(e[4]), e[5])
            for i, e in _pairs(raw["entries"])
        ),
        key=lambda e: e.id,
    )
    state = [(s["s"], StateEntry(s["t"], s["k"], s["v"])) for _, s in _pairs(raw["state"])]
    rookery = sorted(
        (
            RookeryEntry(int(i), r["t"], r["i"])
            for i, r in ((pair[0], json.loads(pair[1])) for pair in _list(raw["rookery"]))
        ),
        key=lambda r: r.id,
    )
    interrupts = [
        (r["s"], _interrupt(token, r)) for token, r in _pairs(raw["interrupts"]) if r["u"] != 1
    ]
    return (
        tuple(entries),
        tuple(s for _, s in sorted(state, key=lambda p: p[0])),
        tuple(rookery),
        tuple(i for _, i in sorted(interrupts, key=lambda p: p[0])),
    )


def _trace_records(raw: dict[str, Any], parts: _Parts, include_finished: bool) -> list[TraceRecord]:
    entries, state, rookery, interrupts = parts
    keys: dict[str, list[tuple[int, str]]] = {}
    for key, value in _pairs(raw["keys"]):
        if isinstance(value["t"], str):
            keys.setdefault(value["t"], []).append((value["s"], key))
    n_entries = Counter(e.trace_id for e in entries)
    n_state = Counter(s.trace_id for s in state)
    n_undelivered = Counter(r.trace_id for r in rookery)
    n_unused = Counter(i.trace_id for i in interrupts)
    n_waiting = Counter(i.trace_id for i in interrupts if not i.resumed)
    records = []
    for trace_id, t in sorted(_pairs(raw["traces"]), key=lambda p: p[1]["s"]):
        entries_left, undelivered = n_entries[trace_id], n_undelivered[trace_id]
        running = bool(entries_left or n_state[trace_id] or n_unused[trace_id])
        if not include_finished and not (running or undelivered):
            continue
        status = derive_status(
            cancelled=t["c"] == 1,
            waiting=bool(n_waiting[trace_id]),
            running=running,
            undelivered=bool(undelivered),
        )
        trace_keys = tuple(k for _, k in sorted(keys.get(trace_id, [])))
        records.append(TraceRecord(trace_id, status, trace_keys, entries_left, undelivered))
    return records


def _snapshot(raw: dict[str, Any]) -> JournalSnapshot:
    parts = _snapshot_parts(raw)
    traces = tuple(_trace_records(raw, parts, include_finished=False))
    return JournalSnapshot(*parts, traces=traces)
