import { Redis } from 'ioredis'

/**
 * Two Redis policies, one per side of the queue.
 *
 * The HTTP side must never hang a Marketo invocation nor answer 201 for work it did not store:
 * its connection fails commands at once while Redis is unreachable (`enableOfflineQueue: false`,
 * one retry per request), and the route turns that into a 503.
 *
 * Workers ride out Redis restarts: BullMQ requires `maxRetriesPerRequest: null` for blocking
 * connections, and commands wait in the offline queue until the connection is back.
 */
export function createApiRedisConnection (url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    // A Redis that is connected but not answering (paused, blocked by a slow script, swapping)
    // fails no command by itself: every caller (health, status, picklist cache, intake) would wait
    // as long as it lasts. Each command fails after 2 s instead. The command still sits in the
    // client's queue until Redis answers it (replies come in order); the intake bounds how many
    // of its own may wait there (src/queue/flow-step-intake.ts).
    commandTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000)
  })
}

export function createWorkerRedisConnection (url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000)
  })
}
