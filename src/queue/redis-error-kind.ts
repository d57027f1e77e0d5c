/**
 * Whether a failure from Redis (or from BullMQ talking to it) means "not now" — the same command
 * will succeed later, so the work must stay where it is and be retried — or "never": this command,
 * with this data, is refused, and retrying it would block everything behind it for ever.
 *
 * "Not now" (Redis's error prefixes, https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors
 * and the server's shared error replies):
 *   OOM          `maxmemory` reached under `noeviction`: memory is freed by the workers' progress
 *   LOADING      the dataset is being loaded after a restart
 *   BUSY         a script or function runs past `busy-reply-threshold`
 *   READONLY     written to a replica: a failover is under way, or the client still points at the old master
 *   MASTERDOWN   a replica lost its master (`replica-serve-stale-data no`)
 *   TRYAGAIN, CLUSTERDOWN, MOVED, ASK   cluster resharding / slots not served yet
 *   NOREPLICAS   `min-replicas-to-write` not met
 *   MISCONF      writes stopped because the last RDB save failed
 *   UNBLOCKED    a blocked client released by a role change (failover)
 * and every failure of the link itself (reset, closed, timed out, refused).
 *
 * A script (BullMQ's adds are Lua) relays a refusal inside its own message, e.g.
 * `ERR Error running script …: @user_script:…: -OOM command not allowed …`, so the codes are
 * matched where a word begins, not only at the start. Anything else Redis or BullMQ answers (a job
 * id BullMQ refuses, a wrong type) is permanent.
 */
const NOT_NOW_REPLY = /(?:^|[\s:(-])(?:OOM|LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|MOVED|ASK|NOREPLICAS|MISCONF|UNBLOCKED)\b/
/**
 * The link's failures as ioredis words them (its `Connection is closed.`, offline-queue and command
 * timeouts, retries exhausted) and the socket's own codes. Kept to those words: a vaguer pattern
 * (any "closed" or "connect") would call an entry's own refusal "not now", and retrying that for
 * ever would hold up every entry behind it.
 */
const LINK_FAILURE = /Connection is closed|isn't writeable|Command timed out|max retries per request|connect E[A-Z]+|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|socket hang up|max number of clients/i

/** Socket-level failures: Redis is not there (or not routable), as opposed to a refused command. */
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'
])

/**
 * The connection itself is gone (what redis-reachability.ts reports once per outage): a socket
 * error, or ioredis rejecting what it had sent on a connection that then closed. Narrower than
 * "not now": a paused or busy Redis is reachable.
 */
export function isRedisConnectionError (error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as NodeJS.ErrnoException).code
  return (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) || error.message === 'Connection is closed.'
}

export function isTransientRedisError (error: unknown): boolean {
  // Not even an Error: nothing says it is permanent, and parking work on a guess loses it.
  if (!(error instanceof Error)) return true
  const message = error.message
  if (NOT_NOW_REPLY.test(message)) return true
  return LINK_FAILURE.test(message) || isRedisConnectionError(error)
}
