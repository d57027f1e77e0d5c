import { STATUS_CODES } from 'node:http'
import { DataverseError } from './dataverse-error.ts'

/**
 * The `$batch` wire format, both ways, as pure text functions (reference doc §3 and §9.3; PAD
 * `webapi/execute-batch-operations-using-web-api.md`; OData 4.0 Part 1 §11.7 "Batch Requests"):
 * a `multipart/mixed` body whose parts are `application/http` requests or change sets (a nested
 * `multipart/mixed`), every line ending in CRLF.
 */

/** One request inside a batch, as written: the request line's target is not resolved yet. */
export interface BatchOperation {
  readonly method: string
  /** Absolute URL, path from the server root, path relative to the service root, or `$n[/…]`. */
  readonly target: string
  /** The inner request's headers, names lower-cased. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** The part's `Content-ID`, defined inside change sets so later parts can say `$<id>`. */
  readonly contentId: string | undefined
}

export type BatchEntry =
  | { readonly kind: 'request', readonly operation: BatchOperation }
  | { readonly kind: 'changeset', readonly operations: readonly BatchOperation[] }

/** One inner answer, as the emulator's single-request handling produced it. */
export interface BatchPartAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export type BatchResultEntry =
  | { readonly kind: 'response', readonly answer: BatchPartAnswer, readonly contentId?: string | undefined }
  | { readonly kind: 'changeset', readonly answers: ReadonlyArray<{ readonly answer: BatchPartAnswer, readonly contentId: string | undefined }> }

const CRLF = '\r\n'

/**
 * "Every line must end in CRLF, including the last; otherwise 400 0x80048d19 … Stream was not
 * readable" (reference doc §3, SUP web-api-client-errors.md).
 */
function unreadableStream (): DataverseError {
  return new DataverseError(400, '0x80048d19',
    'Error identified in Payload provided by the user for Entity :\'\', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : System.ArgumentException: Stream was not readable.')
}

function malformedBatch (detail: string): DataverseError {
  return new DataverseError(400, '0x0', `The batch request is not valid: ${detail}`)
}

/** `multipart/mixed;boundary=x` or `…; boundary="x"` (DWA sends it unquoted, §9.3). */
export function boundaryOf (contentType: string | undefined): string | undefined {
  if (contentType === undefined || !/^\s*multipart\/mixed\s*(;|$)/i.test(contentType)) return undefined
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
  return match === null ? undefined : (match[1] ?? match[2])
}

/** The parts between `--boundary` delimiters (RFC 2046 §5.1.1: the CRLF before a delimiter belongs to it). */
function splitMultipart (text: string, boundary: string): string[] {
  const pieces = (CRLF + text).split(`${CRLF}--${boundary}`)
  pieces.shift() // the preamble (DWA's body starts with a CRLF, §9.3)
  const parts: string[] = []
  for (const piece of pieces) {
    if (piece.startsWith('--')) return parts
    // Transport padding (spaces) may follow the delimiter before its CRLF.
    const lineEnd = piece.indexOf(CRLF)
    if (lineEnd === -1 || piece.slice(0, lineEnd).trim() !== '') throw malformedBatch(`a '--${boundary}' delimiter is not followed by a line break`)
    parts.push(piece.slice(lineEnd + CRLF.length))
  }
  throw malformedBatch(`the closing delimiter '--${boundary}--' is missing`)
}

/** Header lines up to the first empty line; the rest is the content. */
function splitHeaders (text: string): { headers: Record<string, string>, content: string } {
  const end = text.indexOf(CRLF + CRLF)
  const head = end === -1 ? text : text.slice(0, end)
  const content = end === -1 ? '' : text.slice(end + 2 * CRLF.length)
  const headers: Record<string, string> = {}
  for (const line of head.split(CRLF)) {
    if (line === '') continue
    const colon = line.indexOf(':')
    if (colon <= 0) throw malformedBatch(`'${line}' is not a header line`)
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { headers, content }
}

function parseOperation (partHeaders: Record<string, string>, content: string): BatchOperation {
  if (!/^application\/http\b/i.test(partHeaders['content-type'] ?? '')) {
    throw malformedBatch('each part must be Content-Type: application/http or a multipart/mixed change set')
  }
  const lineEnd = content.indexOf(CRLF)
  const requestLine = lineEnd === -1 ? content : content.slice(0, lineEnd)
  const match = /^([A-Z]+) (\S+) HTTP\/1\.1$/.exec(requestLine.trim())
  if (match === null) throw malformedBatch(`'${requestLine}' is not a request line`)
  const { headers, content: body } = splitHeaders(lineEnd === -1 ? '' : content.slice(lineEnd + CRLF.length))
  return {
    method: match[1] ?? '',
    target: match[2] ?? '',
    headers,
    // The CRLF ending the body's last line is part of the body text, not of the JSON.
    body: body.replace(/(\r\n)+$/, ''),
    contentId: partHeaders['content-id']
  }
}

/**
 * Reads a `$batch` body into requests and change sets, in order. Refuses bare LF line ends, nested
 * batches, and GET inside a change set ("GET requests must not be included in the change set", PAD
 * execute-batch-operations-using-web-api.md).
 */
export function parseBatchBody (body: string, boundary: string): BatchEntry[] {
  if (/(^|[^\r])\n/.test(body)) throw unreadableStream()
  const entries: BatchEntry[] = []
  for (const part of splitMultipart(body, boundary)) {
    const { headers, content } = splitHeaders(part)
    const changesetBoundary = boundaryOf(headers['content-type'])
    if (changesetBoundary === undefined) {
      entries.push({ kind: 'request', operation: parseOperation(headers, content) })
      continue
    }
    const operations: BatchOperation[] = []
    for (const inner of splitMultipart(content, changesetBoundary)) {
      const innerPart = splitHeaders(inner)
      if (boundaryOf(innerPart.headers['content-type']) !== undefined) throw malformedBatch('a change set cannot contain another change set or batch')
      const operation = parseOperation(innerPart.headers, innerPart.content)
      if (operation.method === 'GET') throw malformedBatch('GET requests are not allowed inside a change set')
      operations.push(operation)
    }
    entries.push({ kind: 'changeset', operations })
  }
  return entries
}

export function countOperations (entries: readonly BatchEntry[]): number {
  return entries.reduce((sum, entry) => sum + (entry.kind === 'request' ? 1 : entry.operations.length), 0)
}

function formatAnswerPart (answer: BatchPartAnswer, contentId: string | undefined): string {
  const lines = ['Content-Type: application/http', 'Content-Transfer-Encoding: binary']
  if (contentId !== undefined) lines.push(`Content-ID: ${contentId}`)
  lines.push('', `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Unknown'}`)
  for (const [name, value] of Object.entries(answer.headers)) {
    // Framing headers of the inner answer mean nothing inside the multipart body.
    if (name.toLowerCase() !== 'content-length') lines.push(`${name}: ${value}`)
  }
  lines.push('')
  if (answer.body !== '') lines.push(answer.body)
  return lines.join(CRLF) + CRLF
}

/**
 * The `--batchresponse_…` body: one part per request in request order, a change set's answers
 * wrapped in `--changesetresponse_…` with each part echoing its `Content-ID` (reference doc §3).
 */
export function formatBatchResponse (results: readonly BatchResultEntry[], batchBoundary: string, changesetBoundary: () => string): string {
  let text = ''
  for (const result of results) {
    text += `--${batchBoundary}${CRLF}`
    if (result.kind === 'response') {
      text += formatAnswerPart(result.answer, result.contentId)
      continue
    }
    const boundary = changesetBoundary()
    text += `Content-Type: multipart/mixed; boundary=${boundary}${CRLF}${CRLF}`
    for (const { answer, contentId } of result.answers) text += `--${boundary}${CRLF}${formatAnswerPart(answer, contentId)}`
    text += `--${boundary}--${CRLF}`
  }
  return `${text}--${batchBoundary}--${CRLF}`
}
