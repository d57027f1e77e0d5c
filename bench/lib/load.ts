import { Agent, request } from 'node:http'
import autocannon from 'autocannon'
import { summarise, round, type LatencySummary } from './percentiles.ts'

/**
 * Two ways to load `POST /submitAsyncAction`:
 *
 * - `runPacedLoad`, open loop at a fixed rate: request i is due at start + i/rate and its latency
 *   counts from that moment, so a stalled server is charged for the requests it delayed
 *   (no coordinated omission). autocannon's own `overallRate` sends each second's quota in one
 *   burst at the top of the second, which measures bursts, not a rate.
 * - `runMaxLoad`, autocannon closed loop with N connections: the maximum rate.
 */

export interface LoadPoint {
  readonly mode: string
  readonly durationS: number
  readonly requests: number
  readonly requestsPerSecond: number
  readonly latencyMs: Pick<LatencySummary, 'p50' | 'p99'> & Partial<LatencySummary>
  /** Responses that were not the expected status, plus network errors and timeouts. */
  readonly errors: number
  readonly statuses: Readonly<Record<string, number>>
}

export interface LoadTarget {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly nextBody: () => string
  readonly expectStatus: number
}

export async function runPacedLoad (target: LoadTarget, { rate, durationMs, maxSockets = 256 }: { rate: number, durationMs: number, maxSockets?: number }): Promise<LoadPoint> {
  const url = new URL(target.url)
  const agent = new Agent({ keepAlive: true, maxSockets })
  const total = Math.round(rate * durationMs / 1000)
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  let errors = 0
  let sent = 0
  let settled = 0
  const start = performance.now()

  await new Promise<void>((resolve) => {
    const fire = (due: number) => {
      const body = target.nextBody()
      const req = request({
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { ...target.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
      }, (res) => {
        res.resume()
        res.once('end', () => {
          latencies.push(performance.now() - due)
          statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1
          if (res.statusCode !== target.expectStatus) errors++
          done()
        })
      })
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
      req.once('error', () => {
        errors++
        statuses.network = (statuses.network ?? 0) + 1
        done()
      })
      req.end(body)
    }
    const done = () => {
      settled++
      if (settled === total) resolve()
    }
    const tick = () => {
      const elapsed = performance.now() - start
      const due = Math.min(total, Math.floor(elapsed * rate / 1000) + 1)
      while (sent < due) {
        fire(start + sent * 1000 / rate)
        sent++
      }
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })
  const elapsedS = (performance.now() - start) / 1000
  agent.destroy()
  return {
    mode: `${rate}/s`,
    durationS: round(elapsedS, 1),
    requests: total,
    requestsPerSecond: round(total / elapsedS, 0),
    latencyMs: summarise(latencies),
    errors,
    statuses
  }
}

export async function runMaxLoad (target: LoadTarget, { connections, durationMs }: { connections: number, durationMs: number }): Promise<LoadPoint> {
  const url = new URL(target.url)
  const result = await autocannon({
    url: url.origin,
    connections,
    duration: durationMs / 1000,
    requests: [{
      method: 'POST',
      path: url.pathname,
      headers: { ...target.headers, 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: target.nextBody() })
    }],
    expectBody: undefined
  })
  const statuses: Record<string, number> = {
    '1xx': result['1xx'], '2xx': result['2xx'], '3xx': result['3xx'], '4xx': result['4xx'], '5xx': result['5xx']
  }
  return {
    mode: 'max',
    durationS: result.duration,
    requests: result.requests.total,
    requestsPerSecond: round(result.requests.total / result.duration, 0),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: round(result.latency.mean) },
    errors: result.errors + result.timeouts + result.non2xx,
    statuses
  }
}
