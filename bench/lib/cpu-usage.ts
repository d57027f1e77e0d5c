import { readFile } from 'node:fs/promises'
import type { Redis } from 'ioredis'

/**
 * CPU seconds used so far, per process: sampled before and after a load step, the difference over
 * the wall time says how busy each process was (1.0 = one core), which is how a benchmark tells
 * whether CPU, Redis or something else binds the rate.
 */
const CLOCK_TICKS_PER_SECOND = 100 // USER_HZ; Linux fixes it at 100 on every common architecture

export async function processCpuSeconds (pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
  } catch {
    return Number.NaN
  }
}

export async function redisCpuSeconds (redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const value = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
  return value('used_cpu_sys') + value('used_cpu_user')
}

export function ownCpuSeconds (): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

/** Busy and total jiffies of the whole machine (every tenant's processes, not only ours). */
export async function machineCpuTicks (): Promise<{ busy: number, total: number }> {
  const stat = await readFile('/proc/stat', 'utf8')
  const values = (/^cpu\s+(.*)$/m.exec(stat)?.[1] ?? '').trim().split(/\s+/).map(Number)
  const total = values.reduce((sum, v) => sum + v, 0)
  const idle = (values[3] ?? 0) + (values[4] ?? 0) // idle + iowait
  return { busy: total - idle, total }
}
