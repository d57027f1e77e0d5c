import type { ServiceMetrics } from './service-metrics.ts'

/**
 * What the Dataverse and Marketo clients report of each request they make, one call per answer
 * (or failure). Optional in both clients: a client built without one reports nothing.
 * `code` is bounded by the clients (an HTTP status, a Marketo error code, `network`, `timeout`):
 * never a message, an id or a value, since it becomes a metric label.
 */
export type OutsideService = 'dynamics' | 'marketo'

export type OutsideCallAnswer =
  | { readonly outcome: 'ok' }
  | { readonly outcome: 'error', readonly code: string }

export interface OutsideCallObserver {
  observeCall (service: OutsideService, answer: OutsideCallAnswer): void
}

/** Codes that may become a label as they are; anything else is `other`, so no label explodes. */
const BOUNDED_CODE = /^(?:http_\d{3}|\d{3,4}|network|timeout)$/

export function outsideCallMetrics (metrics: Pick<ServiceMetrics, 'outsideCalls' | 'outsideCallErrors'>): OutsideCallObserver {
  return {
    observeCall (service, answer) {
      metrics.outsideCalls.inc({ service })
      if (answer.outcome === 'error') metrics.outsideCallErrors.inc({ service, code: BOUNDED_CODE.test(answer.code) ? answer.code : 'other' })
    }
  }
}

/** A failed fetch as a bounded code: our timeout, or the network (DNS, refused, reset). */
export function fetchFailureCode (error: unknown): 'timeout' | 'network' {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError') ? 'timeout' : 'network'
}
