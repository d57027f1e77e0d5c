import type { IncomingMessage, ServerResponse } from 'node:http'

/** Raised when a request body exceeds the caller's limit; REST answers it with HTTP 413 (reference §2.2). */
export class BodyTooLargeError extends Error {
  readonly code = 'BODY_TOO_LARGE'
  constructor (readonly limitBytes: number) {
    super(`request body exceeds ${limitBytes} bytes`)
    this.name = 'BodyTooLargeError'
  }
}

export async function readBody (req: IncomingMessage, limitBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  let tooLarge = false
  for await (const chunk of req) {
    const buffer = chunk as Buffer
    size += buffer.length
    // Keep draining after the limit so the client sees our 413 instead of a reset connection.
    if (size > limitBytes) tooLarge = true
    else chunks.push(buffer)
  }
  if (tooLarge) throw new BodyTooLargeError(limitBytes)
  return Buffer.concat(chunks).toString('utf8')
}

export function sendJson (res: ServerResponse, status: number, body: unknown, contentType = 'application/json', indent = 0): void {
  const text = JSON.stringify(body, null, indent)
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}

export function mediaTypeOf (req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

/** A single-valued header (Node gives arrays only for set-cookie and duplicates). */
export function headerValue (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}
