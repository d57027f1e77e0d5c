import type { ProcessHarness } from './process-harness.ts'
import { eventually } from './flow-step-harness.ts'

/**
 * Where each process of a process harness serves its ops port (metrics, health): the sandbox runs
 * them with OPS_PORT=0, and each logs its `opsUrl` once it listens.
 */
export async function opsUrlOf (h: ProcessHarness, processName: string): Promise<string> {
  return await eventually(() => {
    for (const line of h.logText().split('\n')) {
      if (!line.startsWith(`[${processName}] `) || !line.includes('"ops server listening')) continue
      const url = /"opsUrl":"([^"]+)"/.exec(line)?.[1]
      if (url !== undefined) return url
    }
    return undefined
  }, { timeoutMs: 30_000, intervalMs: 50, what: `${processName}'s ops server` })
}

/** The sum of every sample of `name` whose labels include all of `labels` (`key="value"`). */
export function sumSamples (text: string, name: string, labels: readonly string[] = []): number | undefined {
  let sum: number | undefined
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue
    if (!labels.every((label) => line.includes(label))) continue
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

export async function scrape (opsUrl: string): Promise<string> {
  const response = await fetch(`${opsUrl}/metrics`)
  if (response.status !== 200) throw new Error(`${opsUrl}/metrics answered ${response.status}`)
  return await response.text()
}
