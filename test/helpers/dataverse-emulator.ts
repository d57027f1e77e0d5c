import { startDataverseEmulator, type DataverseEmulator } from '../../sandbox/dataverse/index.ts'

/**
 * The emulated Dataverse for its own tests, spoken to over plain HTTP as any client would: a bearer
 * the emulator accepts, OData 4.0 JSON, and the answer's body parsed when it is JSON.
 */
export const SANDBOX_BEARER = 'Bearer sandbox-token'

/** An emulator closed when the test ends. */
export async function startedDataverseEmulator (t: { teardown: (fn: () => unknown) => void }, options: Parameters<typeof startDataverseEmulator>[0] = {}): Promise<DataverseEmulator> {
  const emulator = await startDataverseEmulator(options)
  t.teardown(() => emulator.close())
  return emulator
}

export interface WebApiReply {
  status: number
  headers: Headers
  body: any
}

/** One request to an absolute Web API URL (a collection, a nextLink or deltaLink, an action). */
export async function sendToWebApi (url: string, method: string, options: { body?: unknown, headers?: Record<string, string> } = {}): Promise<WebApiReply> {
  const response = await fetch(url, {
    method,
    headers: {
      Authorization: SANDBOX_BEARER,
      Accept: 'application/json',
      'OData-Version': '4.0',
      ...(options.body === undefined ? {} : { 'Content-Type': 'application/json; charset=utf-8' }),
      ...options.headers
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
  })
  const text = await response.text()
  let body: unknown = text
  if ((response.headers.get('content-type') ?? '').startsWith('application/json') && text !== '') body = JSON.parse(text)
  return { status: response.status, headers: response.headers, body }
}
