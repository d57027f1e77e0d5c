import { setTimeout as delay } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { recordLinkKey } from '../../src/queue/redis-keys.ts'

/**
 * What the background-sync benchmark watches while the worker runs: the person ⇄ record links in
 * Redis (the sync's own record of a linked pair) and Redis's memory. Read-only.
 */

/** Polls `condition` every `everyMs` until it holds; false when `limitMs` passes first. */
export async function pollUntil (condition: () => boolean | Promise<boolean>, limitMs: number, everyMs = 100): Promise<boolean> {
  const deadline = performance.now() + limitMs
  for (;;) {
    if (await condition()) return true
    if (performance.now() >= deadline) return false
    await delay(everyMs)
  }
}

/** The Marketo person id linked to each lead (undefined: not linked yet), 1,000 keys a command. */
export async function linkedPersonIds (redis: Redis, prefix: string, leadIds: readonly string[]): Promise<Array<number | undefined>> {
  const ids: Array<number | undefined> = []
  for (let start = 0; start < leadIds.length; start += 1_000) {
    const keys = leadIds.slice(start, start + 1_000).map((id) => recordLinkKey(prefix, 'lead', id))
    for (const value of await redis.mget(...keys)) ids.push(value === null ? undefined : Number(value))
  }
  return ids
}

/** `used_memory` of INFO memory, in bytes. */
export async function redisUsedMemory (redis: Redis): Promise<number> {
  const info = await redis.info('memory')
  const match = /^used_memory:(\d+)/m.exec(info)
  if (match === null) throw new Error('INFO memory has no used_memory')
  return Number(match[1])
}

/** MEMORY USAGE of each key (0 when missing), summed. */
export async function keysMemory (redis: Redis, keys: readonly string[]): Promise<number> {
  let total = 0
  for (const key of keys) total += Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') ?? 0)
  return total
}
