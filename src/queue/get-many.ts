import type { RedisClient } from './connections.ts'

/**
 * Reads many string keys in one go. On one Redis that is one MGET. A cluster refuses an MGET whose
 * keys lie in different hash slots (CROSSSLOT), and keys that are read together but written apart,
 * such as different emails' claims, are deliberately spread over the slots (src/queue/redis-keys.ts);
 * there each key gets its own GET, all sent at once, which ioredis routes to each key's node.
 */
export async function getMany (redis: RedisClient, keys: readonly string[]): Promise<Array<string | null>> {
  if (keys.length === 0) return []
  if (redis.isCluster) return await Promise.all(keys.map(async (key) => await redis.get(key)))
  return await redis.mget(...keys)
}
