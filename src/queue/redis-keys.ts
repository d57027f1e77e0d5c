import type { QueueName } from './names.ts'

/**
 * Every Redis key the service uses, built here so the layout is in one place.
 *
 * The same layout runs on one Redis and on a Redis Cluster. A cluster spreads keys over 16,384
 * hash slots and refuses (CROSSSLOT) a command, transaction or Lua script whose keys lie in more
 * than one slot. Only the part of a key inside its first `{…}`, its hash tag, decides its slot
 * (Redis cluster specification, "Hash tags"), so keys used together share a tag, and unrelated
 * groups get different tags, so they can spread over the nodes:
 *
 *   <p>:{flow-step}:flow-step:…                BullMQ's keys of one queue. Its scripts touch
 *   <p>:{flow-step-callback}:flow-step-callback:…  several keys of the queue, so BullMQ asks for
 *                                             the queue prefix in a hash tag (docs.bullmq.io,
 *                                             patterns/redis-cluster); one tag per queue lets the
 *                                             two queues live on different nodes
 *   <p>:{intake:flow-step}                     the intake stream (src/queue/flow-step-intake.ts)
 *   <p>:{intake:flow-step}:parked              and its parked entries, which a mover's batch writes
 *   <p>:email:{<digest>}:claim                 an email's claim, its remembered record and claim
 *   <p>:email:{<digest>}:record                generation: the claim scripts take all three
 *   <p>:email:{<digest>}:claim-gen             (src/flow-step/email-claims.ts); one tag per email
 *                                             spreads the claims over the nodes
 *   <p>:{links}:person:<marketoId>             the person ⇄ record link, both directions written
 *   <p>:{links}:record:<lead|contact>:<id>     in one MULTI (src/links/record-link-store.ts). The
 *                                             two ends are found from different ids, so no per-person
 *                                             tag can put both in one slot: all links share one
 *                                             (a few hundred bytes a person, on one node)
 *   <p>:cache:picklist:assignTo                the Assign To picklist cache, used alone: no tag
 *   <p>:{checkpoint:<direction>:<table>}       a change feed's cursor and version (hash), used
 *                                             alone by one script (src/background-sync/checkpoints.ts)
 *   <p>:{checkpoint:<direction>:<table>}:lease one pass at a time per feed (a token with a TTL,
 *                                             src/background-sync/feed-lease.ts); the checkpoint's
 *                                             tag, so a later script may check both in one slot
 *   <p>:{checkpoint:<direction>:<table>}:poll-pace  when a feed is read next and what its polls
 *                                             spent today (a hash of times and counts, src/background-
 *                                             sync/marketo-poll-schedule.ts); the checkpoint's tag
 *   <p>:{checkpoint:<direction>:<table>}:deleted-sweep  a table's sweep of its linked records for
 *                                             deletes change tracking cannot show: a SCAN cursor and
 *                                             times (src/background-sync/deleted-record-sweep.ts);
 *                                             used alone, the checkpoint's tag
 *   <p>:{checkpoint:<direction>:<table>}:progress  when the feed was first read and last caught up
 *                                             (two times; src/metrics/sync-progress.ts): the sync lag
 *   <p>:{metrics}:leader                       the one process exporting the cluster-wide gauges
 *                                             (a token with a TTL, src/metrics/cluster-gauges.ts)
 *   <p>:{pair:<lead|contact>:<id>}             a linked pair's last-synced state: a keyed hash per
 *                                             mapped field, never a value (src/background-sync/
 *                                             pair-state-store.ts); used alone, its own tag
 *   <p>:{pair:<lead|contact>:<id>}:meta        the pair's last sync each way: times and outcome
 *                                             codes, never a value; the pair's tag, written in the
 *                                             state's MULTI and removed with it
 *   <p>:{marketo-budget}:window                the Marketo call budget shared by every process:
 *   <p>:{marketo-budget}:leases                admissions in the sliding window, in-flight leases
 *   <p>:{marketo-budget}:daily                 and today's count, all taken by one Lua script
 *                                             (src/marketo/marketo-call-budget.ts)
 *   <p>:{parked-changes}:index                 changes a side refused, parked for ops: an index
 *   <p>:{parked-changes}:entry:<id>            by when parked and one hash per entry (ids, field
 *                                             names, codes; never a value), taken together by
 *                                             one script (src/background-sync/parked-changes.ts),
 *                                             which also deletes the entries its cap trims: the one
 *                                             script that builds keys it was not given (same tag)
 *   <p>:{sync-pauses}                         the background sync's paused directions (hash
 *                                             direction → when paused), set by the admin API and
 *                                             read where each pass starts (src/background-sync/sync-pauses.ts)
 *   <p>:{dataverse-concurrency}:leases        Dataverse requests in flight across every worker:
 *                                             one lease per request (zset id → expiry), used
 *                                             alone by one script (src/dynamics/shared-concurrency-limit.ts)
 *
 * Keys of different tags read together (several emails' claims) are read one command a key on a
 * cluster (src/queue/get-many.ts).
 *
 * `<p>` is REDIS_KEY_PREFIX and begins every key, so deployments can share a Redis (two prefixes
 * share each group's slot, never its keys). A prefix that
 * holds a `{…}` of its own becomes every key's tag and puts the whole service in one slot: that
 * still works on a cluster, on one node.
 *
 * Renaming keys is a deployment-visible change: a version with another layout does not see the
 * queued work of the one before (README, "Redis Cluster").
 */

/** BullMQ's `prefix` for a queue: its keys are `<this>:<queue name>:<suffix>`. */
export function queuePrefix (prefix: string, queue: QueueName): string {
  return `${prefix}:{${queue}}`
}

export function intakeStreamKeys (prefix: string): { readonly stream: string, readonly parked: string } {
  const stream = `${prefix}:{intake:flow-step}`
  return { stream, parked: `${stream}:parked` }
}

/** `emailDigest` is the email's hash as email-claims.ts makes it: personal data never enters a key. */
export function emailClaimKeys (prefix: string, emailDigest: string): { readonly claim: string, readonly record: string, readonly generation: string } {
  const email = `${prefix}:email:{${emailDigest}}`
  return { claim: `${email}:claim`, record: `${email}:record`, generation: `${email}:claim-gen` }
}

export function personLinkKey (prefix: string, marketoId: number): string {
  return `${prefix}:{links}:person:${marketoId}`
}

/** `recordType` in lower case: `lead` or `contact`. */
export function recordLinkKey (prefix: string, recordType: string, recordId: string): string {
  return `${prefix}:{links}:record:${recordType}:${recordId}`
}

/**
 * A lead qualified into a contact that took over its person (src/links/record-link-store.ts
 * `markConverted`): the contact's id. The lead is no pair any more; its later changes (its Qualified
 * state) are settled, not matched by email to the person its contact now has. Dropped when the lead is
 * deleted. The {links} tag, with the links it stands beside.
 */
export function convertedLeadKey (prefix: string, leadId: string): string {
  return `${prefix}:{links}:converted:lead:${leadId}`
}

export function assignToPicklistCacheKey (prefix: string): string {
  return `${prefix}:cache:picklist:assignTo`
}

/**
 * Flow-step jobs failed for good whose callback has been queued (a sorted set of job ids, scored
 * by when): only ever used alone, so it shares the flow-step queue's tag for locality, not need.
 */
export function abandonedJobsReportedKey (prefix: string): string {
  return `${queuePrefix(prefix, 'flow-step')}:abandoned-reported`
}

/**
 * The background sync's progress through one change feed (src/background-sync/checkpoints.ts):
 * `direction` as `dynamics-to-marketo`, `table` as `lead` or `contact`. Its script takes only this
 * key, so each checkpoint is its own tag and the checkpoints spread over the nodes.
 */
export function syncCheckpointKey (prefix: string, direction: string, table: string): string {
  return `${prefix}:{checkpoint:${direction}:${table}}`
}

/**
 * The lease held by the one pass of a change feed that may run (src/background-sync/feed-lease.ts).
 * Its scripts take only this key; it shares its feed's checkpoint tag (one slot per feed), so a
 * script that checks the lease and saves the checkpoint together stays cluster-safe.
 */
export function syncFeedLeaseKey (prefix: string, direction: string, table: string): string {
  return `${syncCheckpointKey(prefix, direction, table)}:lease`
}

/**
 * When a polled feed is read next, and the calls its polls spent today (src/background-sync/
 * marketo-poll-schedule.ts): times and counts only. Its feed's checkpoint tag, like the lease.
 */
export function syncFeedPollPaceKey (prefix: string, direction: string, table: string): string {
  return `${syncCheckpointKey(prefix, direction, table)}:poll-pace`
}

/**
 * A Dynamics table's sweep for deleted linked records (src/background-sync/deleted-record-sweep.ts):
 * whether one is due or running, its SCAN cursor over the table's record links, and when the last
 * one started and ended. Ids, cursors and times only. Its feed's checkpoint tag, like the lease.
 */
export function syncDeletedRecordSweepKey (prefix: string, table: string): string {
  return `${syncCheckpointKey(prefix, 'dynamics-to-marketo', table)}:deleted-sweep`
}

/**
 * The Marketo call budget's keys (src/marketo/marketo-call-budget.ts): its acquire script takes all
 * three, so they share one hash tag. They hold call ids and counts, never personal data.
 */
export function marketoCallBudgetKeys (prefix: string): { readonly window: string, readonly leases: string, readonly daily: string } {
  const budget = `${prefix}:{marketo-budget}`
  return { window: `${budget}:window`, leases: `${budget}:leases`, daily: `${budget}:daily` }
}

/** The leases of Dataverse requests in flight across every process (request ids and expiries only). */
export function dataverseConcurrencyLeasesKey (prefix: string): string {
  return `${prefix}:{dataverse-concurrency}:leases`
}

/**
 * A linked pair's last-synced state (src/background-sync/pair-state-store.ts), named by its Dynamics
 * record: `recordType` `lead` or `contact`, `recordId` the record's GUID. Fingerprints only.
 */
export function syncPairStateKey (prefix: string, recordType: string, recordId: string): string {
  return `${prefix}:{pair:${recordType}:${recordId}}`
}

/**
 * A linked pair's sync record (src/background-sync/pair-state-store.ts): when each direction last
 * looked at the pair, with what outcome (a code), and when it last saved its state. The state's tag,
 * so the two are written in one MULTI and dropped in one DEL.
 */
export function syncPairMetaKey (prefix: string, recordType: string, recordId: string): string {
  return `${syncPairStateKey(prefix, recordType, recordId)}:meta`
}

/**
 * Changes parked because a side refused them (src/background-sync/parked-changes.ts): a sorted set
 * of entry ids by when first parked, and one hash per entry. The park script takes the index and
 * the entries it writes or trims, so all share one tag; the count is capped, so one slot holds them.
 * `entry` takes the entry's id (`<direction>:<table>:<record id>`): ids only, no personal data.
 */
export function parkedChangeKeys (prefix: string): { readonly index: string, readonly entry: (id: string) => string } {
  const parked = `${prefix}:{parked-changes}`
  return { index: `${parked}:index`, entry: (id) => `${parked}:entry:${id}` }
}

/**
 * When a change feed was first read and when a pass last found it caught up (src/metrics/
 * sync-progress.ts): two times, the source of the sync-lag metric. The feed's checkpoint tag.
 */
export function syncFeedProgressKey (prefix: string, direction: string, table: string): string {
  return `${syncCheckpointKey(prefix, direction, table)}:progress`
}

/**
 * The lease of the one process that exports the cluster-wide gauges (src/metrics/cluster-gauges.ts):
 * a random token with a TTL, used alone.
 */
export function metricsLeaderLeaseKey (prefix: string): string {
  return `${prefix}:{metrics}:leader`
}

/**
 * The background sync's paused directions (src/background-sync/sync-pauses.ts): a hash of
 * `dynamics-to-marketo` / `marketo-to-dynamics` → when paused (epoch ms). Used alone, its own tag.
 */
export function syncPausesKey (prefix: string): string {
  return `${prefix}:{sync-pauses}`
}

/**
 * Records the sync wrote to the other side in one minute, per direction (src/admin/
 * status-page-throughput.ts): a count, kept a little over an hour, for the status page's throughput.
 * One hash tag per direction, so one MGET reads the hour.
 */
export function syncThroughputKey (prefix: string, direction: string, minute: number): string {
  return `${prefix}:{sync-throughput:${direction}}:${minute}`
}
