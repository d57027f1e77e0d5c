import os from 'node:os'

/** What the figures were measured on: benchmark results mean little without it. */
export interface MachineInfo {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGb: number
  readonly node: string
  readonly platform: string
  readonly redis?: string
}

export function describeMachine (extra: { redis?: string } = {}): MachineInfo {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3 * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    ...extra
  }
}
