import type { SseRedisClient } from './client.js'

// The Lua scripts, defined once per connection with `defineCommand`. Each runs atomically, so an
// event is stored and announced together, or not at all.

/** Where `last-generated-id` of the stream `key` is ('' without a stream). */
const LAST_ID = `
local function last_id (key)
  if redis.call('EXISTS', key) == 0 then return '' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return ''
end
`

/**
 * KEYS: the stream, the idempotency key. ARGV: history (entries kept, about; exactly 1 for 0: never
 * replayed, it lets an app tell whether an event it has not been announced yet follows its last), body,
 * idempotency window in ms ('0': no key), stream TTL in ms ('0': none), pub/sub channel, 'PUBLISH' or
 * 'SPUBLISH', deadline in Redis ms ('0': none). As sseRecordEnd, a third key, a record, and ARGV 8 its
 * lifetime in ms: the entry's id is its field `end`, in the same step (a resumable stream's end).
 *
 * A key already set stores nothing and answers the id it holds. Past the deadline (the caller was
 * told it timed out) nothing is stored and the answer is false. Otherwise the entry gets its id and
 * `p`, the id before it, and is announced as `<id> <prev> <body>`.
 */
const PUBLISH = LAST_ID + `
if ARGV[3] ~= '0' then
  local first = redis.call('GET', KEYS[2])
  if first then return first end
end
if ARGV[7] ~= '0' then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[7]) then return false end
end
local prev = last_id(KEYS[1])
local id
if ARGV[1] == '0' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '1', '*', 'p', prev, 'b', ARGV[2])
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', prev, 'b', ARGV[2])
end
if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
if ARGV[3] ~= '0' then redis.call('SET', KEYS[2], id, 'PX', ARGV[3]) end
if KEYS[3] then
  redis.call('HSET', KEYS[3], 'end', id)
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
end
redis.call(ARGV[6], ARGV[5], id .. ' ' .. prev .. ' ' .. ARGV[2])
return id
`

/**
 * KEYS: the stream. ARGV: an id ('' for none), the most entries to answer.
 * `{ last id the stream gave ('' without a stream), entries oldest first }`: the newest entries after
 * the id when the first of them follows it; otherwise (the id is unknown, trimmed away, or from a history
 * Redis lost) the newest ones. With a count of 0, only the last id: where the stream stands.
 */
const REPLAY = LAST_ID + `
local function reversed (entries)
  local oldest_first = {}
  for i = #entries, 1, -1 do oldest_first[#oldest_first + 1] = entries[i] end
  return oldest_first
end
local last = last_id(KEYS[1])
local count = tonumber(ARGV[2])
if last == '' or count == 0 or ARGV[1] == last then return { last, {} } end
if ARGV[1] ~= '' then
  local after = redis.call('XREVRANGE', KEYS[1], '+', '(' .. ARGV[1], 'COUNT', count)
  local oldest = after[#after]
  if oldest then
    local fields = oldest[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'p' then
        if fields[i + 1] == ARGV[1] then return { last, reversed(after) } end
        break
      end
    end
  end
end
return { last, reversed(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', count)) }
`

/**
 * KEYS: the stream. ARGV: a time in Redis ms. The id a feed that started then goes on from: the
 * newest entry before it; else the id before the oldest kept entry when that is before it ('' for the
 * first entry of a stream); else '' (what followed that time is no longer kept: the feed's first
 * fetch finds the gap). '' without a stream; its last id when it keeps no entry.
 */
const POSITION = LAST_ID + `
if redis.call('EXISTS', KEYS[1]) == 0 then return '' end
local before = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1] .. '-0', '-', 'COUNT', 1)[1]
if before then return before[1] end
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not oldest then return last_id(KEYS[1]) end
local fields = oldest[2]
for i = 1, #fields, 2 do
  if fields[i] == 'p' then
    local prev = fields[i + 1]
    local ms = tonumber(string.match(prev, '^(%d+)-'))
    if ms ~= nil and ms < tonumber(ARGV[1]) then return prev end
    break
  end
end
return ''
`

/**
 * KEYS: the record. ARGV: its lifetime in ms, then field, value pairs. Made only when there is none: 1 when
 * made, 0 when one was kept.
 */
const CREATE_RECORD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`

/**
 * KEYS: the stream. ARGV: its TTL in ms ('0': none), pub/sub channel, 'PUBLISH' or 'SPUBLISH'. The
 * stream's last id; a stream that does not exist is made with one marker entry (`p` '', no body), and
 * its id answered: a real id, so should that stream go (expired, Redis without its data), a replay from
 * the id finds it unknown and says so, instead of taking the next stream's first entry (`p` '' too) for
 * the one that followed it. The marker is announced (`<id>  `, no body) as events are: a feed that
 * stood at '' moves onto it, and takes the next event for the one that follows, however short the history.
 */
const PLACE = LAST_ID + `
local last = last_id(KEYS[1])
if last ~= '' then return last end
local id = redis.call('XADD', KEYS[1], '*', 'p', '', 'm', '1')
if ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
redis.call(ARGV[3], ARGV[2], id .. '  ')
return id
`

/** An entry as Redis answers it: its id and its fields, name then value. */
export type RawEntry = [id: string, fields: string[]]

export interface ScriptedRedis extends SseRedisClient {
  ssePublish (stream: string, idempotencyKey: string, history: number, body: string, window: number, ttl: number,
    announcement: string, publishCommand: string, deadline: number): Promise<string | null>
  sseRecordEnd (stream: string, idempotencyKey: string, record: string, history: number, body: string, window: number,
    ttl: number, announcement: string, publishCommand: string, deadline: number, recordTtl: number): Promise<string | null>
  sseReplay (stream: string, after: string, count: number): Promise<[last: string, entries: RawEntry[]]>
  ssePosition (stream: string, since: number): Promise<string>
  ssePlace (stream: string, ttl: number, announcement: string, publishCommand: string): Promise<string>
  sseCreateRecord (record: string, ttl: number, ...fields: string[]): Promise<number>
  /** A plain command, not a script: a read Redis serves while writes are paused (CLIENT PAUSE WRITE, a failover). */
  hgetall (key: string): Promise<Record<string, string>>
}

export function withScripts (client: SseRedisClient): ScriptedRedis {
  client.defineCommand('ssePublish', { numberOfKeys: 2, lua: PUBLISH })
  client.defineCommand('sseRecordEnd', { numberOfKeys: 3, lua: PUBLISH })
  client.defineCommand('sseReplay', { numberOfKeys: 1, lua: REPLAY })
  client.defineCommand('ssePosition', { numberOfKeys: 1, lua: POSITION })
  client.defineCommand('ssePlace', { numberOfKeys: 1, lua: PLACE })
  client.defineCommand('sseCreateRecord', { numberOfKeys: 1, lua: CREATE_RECORD })
  return client as ScriptedRedis
}
