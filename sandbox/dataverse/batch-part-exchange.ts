import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { BatchPartAnswer } from './batch-multipart.ts'
import { errorAnswer, type BatchPartRequest } from './batch.ts'
import { DataverseError } from './dataverse-error.ts'

/**
 * One `$batch` inner request handed to the emulator's single-request router in memory: a readable
 * request carrying the part's method, URL, headers and body, and a response that records what the
 * router writes. The router only reads `headers` and the body stream and only calls `writeHead`
 * and `end`, so these two small objects stand in for Node's; going through real HTTP instead would
 * charge every inner request the emulated latency and faults, which Dataverse applies to the batch.
 */
export class BatchPartExchange {
  readonly request: IncomingMessage
  readonly response: ServerResponse
  readonly #recorder: AnswerRecorder

  constructor (part: BatchPartRequest) {
    const stream = Readable.from(part.body === '' ? [] : [Buffer.from(part.body, 'utf8')])
    this.request = Object.assign(stream, {
      method: part.method,
      url: `${part.url.pathname}${part.url.search}`,
      headers: { ...part.headers }
    }) as unknown as IncomingMessage
    this.#recorder = new AnswerRecorder()
    this.response = this.#recorder as unknown as ServerResponse
  }

  /** A refusal thrown by the router, answered as the server answers a lone request's. */
  fail (error: unknown): void {
    const refusal = error instanceof DataverseError
      ? error
      : new DataverseError(500, '0x80040216', `An unexpected error occurred. (${(error as Error).message})`)
    const { status, headers, body } = errorAnswer(refusal)
    this.#recorder.writeHead(status, headers)
    this.#recorder.end(body)
  }

  answer (): BatchPartAnswer {
    const answer = this.#recorder.answer
    if (answer === undefined) {
      return errorAnswer(new DataverseError(500, '0x80040216', 'An unexpected error occurred. (the request was not answered)'))
    }
    return answer
  }
}

class AnswerRecorder {
  headersSent = false
  readonly destroyed = false
  #status = 200
  #headers: Record<string, string> = {}
  answer: BatchPartAnswer | undefined

  writeHead (status: number, headers: OutgoingHttpHeaders = {}): this {
    this.#status = status
    this.#headers = Object.fromEntries(Object.entries(headers)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)]))
    this.headersSent = true
    return this
  }

  end (body?: string | Buffer): this {
    this.answer = { status: this.#status, headers: this.#headers, body: body === undefined ? '' : body.toString() }
    return this
  }

  destroy (): this {
    return this
  }
}
