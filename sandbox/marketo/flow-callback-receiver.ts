import type { IncomingMessage, ServerResponse } from 'node:http'
import { CallbackFaults } from './callback-faults.ts'
import { CallbackWaitTimeoutError, EmulatorClosedError } from './errors.ts'
import { parseFlowCallbackBody } from './flow-callback-body.ts'
import { writeFlowCallback, type CallbackWriteOutcome, type CallbackWriterDependencies } from './flow-callback-writer.ts'
import { BodyTooLargeError, headerValue, readBody, sendJson } from './http-io.ts'
import type { InvocationLedger } from './invocation-ledger.ts'

/**
 * `POST /customflowaction/submitCustomFlowAction` — where SSFS services deliver results
 * (reference §1.7). Headers `x-callback-token` (the invocation's one-time token) and `x-api-key`
 * (the `apiCallBackKey` issued with it) authenticate the call. The spec names only 404 and 405;
 * the rest is our choice, made so a service can tell "retry" from "give up":
 *
 *   202  accepted and written (Adobe's mock callback endpoint answers 202 [LK])
 *   400  not JSON, or not a `flowCallBack` (token stays open: fix and resend)
 *   401  `x-callback-token` or `x-api-key` missing
 *   403  `x-api-key` is not the key issued for that token
 *   404  unknown token, or the service refused that invocation (answered non-201)
 *   405  not a POST
 *   409  the token's callback was already accepted (tokens are single-use)
 *   413  body over 10 MB
 *   503  (or the injected status) fault injection: nothing was looked at or recorded
 */

export interface CallbackRecord {
  /** The `x-callback-token` header as received (undefined when absent). */
  readonly token: string | undefined
  readonly receivedAt: string
  /** Parsed JSON, or the raw text when it was not JSON. */
  readonly body: unknown
  readonly status: number
  readonly error?: { readonly code: string, readonly message: string }
  readonly outcome?: CallbackWriteOutcome
}

interface CallbackWaiter {
  readonly resolve: (record: CallbackRecord) => void
  readonly reject: (error: Error) => void
  readonly timer: NodeJS.Timeout
}

const MAX_CALLBACK_BYTES = 10 * 1024 * 1024

export class FlowCallbackReceiver {
  readonly faults: CallbackFaults
  readonly #ledger: InvocationLedger
  readonly #writer: CallbackWriterDependencies
  readonly #records: CallbackRecord[] = []
  /** The accepted callback of each token: the benchmarks wait on thousands, a scan each was the bench's own bottleneck. */
  readonly #acceptedByToken = new Map<string, CallbackRecord>()
  readonly #waiters = new Map<string, Set<CallbackWaiter>>()
  #closed = false

  constructor (deps: { ledger: InvocationLedger, writer: CallbackWriterDependencies }) {
    this.#ledger = deps.ledger
    this.#writer = deps.writer
    this.faults = new CallbackFaults(deps.writer.now)
  }

  /** Every callback attempt, refused ones included, in arrival order. */
  get callbacks (): readonly CallbackRecord[] {
    return this.#records
  }

  attemptCount (token?: string): number {
    return token === undefined ? this.#records.length : this.#records.filter((record) => record.token === token).length
  }

  /** Resolves with the accepted callback for `token` (at once if it already arrived). */
  waitForCallback (token: string, options: { timeoutMs: number }): Promise<CallbackRecord> {
    const accepted = this.#acceptedByToken.get(token)
    if (accepted !== undefined) return Promise.resolve(accepted)
    if (this.#closed) return Promise.reject(new EmulatorClosedError())
    return new Promise((resolve, reject) => {
      const waiters = this.#waiters.get(token) ?? new Set<CallbackWaiter>()
      this.#waiters.set(token, waiters)
      const waiter: CallbackWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          waiters.delete(waiter)
          reject(new CallbackWaitTimeoutError(token, options.timeoutMs))
        }, options.timeoutMs)
      }
      waiters.add(waiter)
    })
  }

  async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = this.#writer.now().toISOString()
    const token = headerValue(req, 'x-callback-token')
    let text: string
    try {
      text = await readBody(req, MAX_CALLBACK_BYTES)
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error
      this.#refuse(res, { token, receivedAt, body: undefined }, 413, 'CALLBACK_TOO_LARGE', error.message)
      return
    }
    const parsed = parseJson(text)
    const attempt = { token, receivedAt, body: parsed.ok ? parsed.value : text }

    const injected = this.faults.takeRefusal()
    if (injected !== undefined) {
      this.#refuse(res, attempt, injected, 'CALLBACK_FAULT_INJECTED', 'callback endpoint unavailable (injected fault)')
      return
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST')
      this.#refuse(res, attempt, 405, 'METHOD_NOT_ALLOWED', `method ${req.method ?? ''} not allowed`)
      return
    }
    if (token === undefined || token === '') {
      this.#refuse(res, attempt, 401, 'CALLBACK_TOKEN_MISSING', 'x-callback-token header is required')
      return
    }
    const invocation = this.#ledger.get(token)
    if (invocation === undefined || invocation.state === 'refused-by-service') {
      this.#refuse(res, attempt, 404, 'CALLBACK_TOKEN_UNKNOWN', 'no open invocation has this token')
      return
    }
    const apiKey = headerValue(req, 'x-api-key')
    if (apiKey === undefined || apiKey === '') {
      this.#refuse(res, attempt, 401, 'CALLBACK_KEY_MISSING', 'x-api-key header is required')
      return
    }
    if (apiKey !== invocation.apiCallBackKey) {
      this.#refuse(res, attempt, 403, 'CALLBACK_KEY_MISMATCH', 'x-api-key is not the apiCallBackKey issued for this token')
      return
    }
    if (invocation.state === 'completed') {
      this.#refuse(res, attempt, 409, 'CALLBACK_TOKEN_USED', 'a callback for this token was already accepted; tokens are single-use')
      return
    }
    if (!parsed.ok) {
      this.#refuse(res, attempt, 400, 'CALLBACK_INVALID_JSON', 'body is not valid JSON')
      return
    }
    const body = parseFlowCallbackBody(parsed.value)
    if (!body.ok) {
      this.#refuse(res, attempt, 400, 'CALLBACK_SCHEMA_INVALID', body.problems.join('; '))
      return
    }
    // Synchronous from here on: a concurrent duplicate sees `completed` and gets 409.
    invocation.state = 'completed'
    const outcome = writeFlowCallback(body.body, invocation, this.#writer)
    const record: CallbackRecord = { ...attempt, status: 202, outcome }
    this.#records.push(record)
    this.#acceptedByToken.set(token, record)
    sendJson(res, 202, { status: 'accepted', processed: outcome.processedLeadIds.length, skipped: outcome.skipped })
    this.#notify(token, record)
  }

  close (): void {
    this.#closed = true
    for (const waiters of this.#waiters.values()) {
      for (const waiter of waiters) {
        clearTimeout(waiter.timer)
        waiter.reject(new EmulatorClosedError())
      }
    }
    this.#waiters.clear()
  }

  #refuse (res: ServerResponse, attempt: Omit<CallbackRecord, 'status'>, status: number, code: string, message: string): void {
    this.#records.push({ ...attempt, status, error: { code, message } })
    sendJson(res, status, { error: { code, message } })
  }

  #notify (token: string, record: CallbackRecord): void {
    const waiters = this.#waiters.get(token)
    if (waiters === undefined) return
    this.#waiters.delete(token)
    for (const waiter of waiters) {
      clearTimeout(waiter.timer)
      waiter.resolve(record)
    }
  }
}

function parseJson (text: string): { ok: true, value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}
