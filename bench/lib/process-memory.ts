import { readFile } from 'node:fs/promises'

/** Resident set size of a process in MB, from /proc (Linux); NaN when it cannot be read. */
export async function residentMb (pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]
    return kb === undefined ? Number.NaN : Math.round(Number(kb) / 1024 * 10) / 10
  } catch {
    return Number.NaN
  }
}
