/**
 * The Lua of the leases the service holds in Redis, one copy each. Two kinds:
 *
 * - A **token lease** (one holder: a feed's pass, the metrics leader): a key set with `SET NX PX` to a
 *   random token. These renew or release it only while it still holds the caller's token, so a
 *   holder that paused past its TTL never extends or frees a lease another has taken since.
 *   KEYS: the lease. ARGV: token, ttl ms (renew only). Answer 1, or 0 when the lease was lost.
 * - A **slot lease** (one of N: a Marketo call slot, a Dataverse request slot): a member of a sorted
 *   set scored by its expiry on Redis's clock. Renewing extends a lease still held (`XX`: an expired
 *   and swept one stays gone) and moves the set's own expiry to its latest lease, so an idle set
 *   never outlives its leases. KEYS: the set. ARGV: member id, lease ms. Answer 1 when renewed.
 */

export const RENEW_TOKEN_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`

export const RELEASE_TOKEN_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

export const RENEW_SLOT_LEASE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
if renewed == 1 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
end
return renewed
`
