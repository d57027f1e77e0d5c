import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'

/** One entry of BullMQ's event stream about a job: what happened (`active`, `delayed`, …) and when. */
export interface JobEvent {
  readonly event: string
  /** Redis' clock, in ms, when the entry was written (the stream entry id's first part). */
  readonly at: number
  readonly fields: Readonly<Record<string, string>>
}

/**
 * A job's history as BullMQ itself recorded it: every state change appends to the queue's event
 * stream in the same Lua script that makes it, so the entries are in the order the changes
 * happened, on one clock, whichever process made them. Processes' log lines are not: each is
 * written after the change it reports, stamped by its own process in whole ms — a job handed back
 * by one worker is often started by another before the first one has logged the hand-back.
 */
export async function jobHistory (redis: Redis, queue: Queue, jobId: string): Promise<JobEvent[]> {
  const entries = await redis.xrange(queue.keys.events!, '-', '+')
  return entries.flatMap(([id, list]) => {
    const fields: Record<string, string> = {}
    for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]!] = list[i + 1]!
    if (fields.jobId !== jobId) return []
    return [{ event: fields.event ?? '', at: Number(id.split('-')[0]), fields }]
  })
}
