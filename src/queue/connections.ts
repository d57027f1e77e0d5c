import { Cluster, Redis, type RedisOptions } from 'ioredis'

/**
 * One Redis or a Redis Cluster: the service's code takes either. ioredis routes each command of a
 * `Cluster` to the node serving its key's slot; commands over several keys work only when those
 * keys share a slot, which the key layout guarantees (src/queue/redis-keys.ts).
 */
export type RedisClient = Redis | Cluster

export interface RedisTopology {
  /** REDIS_CLUSTER=true: the URL is one node of a cluster, from which ioredis discovers the others. */
  readonly cluster?: boolean
}

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
export function createApiRedisConnection (url: string, name: string, { cluster = false }: RedisTopology = {}): RedisClient {
  const options: RedisOptions = {
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
  }
  return cluster ? connectCluster(url, options) : new Redis(url, options)
}

export function createWorkerRedisConnection (url: string, name: string, { cluster = false }: RedisTopology = {}): RedisClient {
  const options: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: null,
    // A connect that gets no answer (an address that drops packets) fails after 3 s instead of
    // ioredis's 10 s, so an unreachable Redis is said within seconds (redis-reachability.ts).
    connectTimeout: 3_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000)
  }
  return cluster ? connectCluster(url, options) : new Redis(url, options)
}

/**
 * The same policy on a cluster: the offline queue and the reconnect pace belong to the `Cluster`
 * itself, everything else (retries per request, which BullMQ checks there; timeouts; credentials)
 * to each node's connection. Credentials and TLS come from the seed URL and hold for every node.
 * With TLS the nodes are reached at the addresses the cluster announces (often bare IPs), so the
 * certificate is checked against the seed's host name, the name it was issued for (ioredis docs,
 * "Special note: AWS ElastiCache Clusters with TLS"; Azure Cache for Redis announces IPs as well).
 */
function connectCluster (url: string, { enableOfflineQueue, retryStrategy, ...nodeOptions }: RedisOptions): Cluster {
  const seed = new URL(url)
  const host = seed.hostname.replace(/^\[(.*)\]$/, '$1')
  return new Cluster([{ host, port: seed.port === '' ? 6379 : Number(seed.port) }], {
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(retryStrategy === undefined ? {} : { clusterRetryStrategy: retryStrategy }),
    redisOptions: {
      ...nodeOptions,
      ...(seed.username === '' ? {} : { username: decodeURIComponent(seed.username) }),
      ...(seed.password === '' ? {} : { password: decodeURIComponent(seed.password) }),
      ...(seed.protocol === 'rediss:' ? { tls: { servername: host } } : {})
    }
  })
}
