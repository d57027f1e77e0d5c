/**
 * Which callback URLs the service will POST person outcomes (and Marketo's one-time token) to.
 *
 * The callback URL arrives in the invocation body, so without a policy anyone holding the API key
 * could make the worker send requests to arbitrary hosts (SSRF). Marketo's production callbacks go
 * to an Adobe I/O gateway (`mkto-cfa.adobe.io`, see shared/reference/marketo-rest-and-ssfs.md §1.6),
 * so the default allow-list is that host only.
 *
 * Allow-list syntax (MARKETO_CALLBACK_HOSTS, comma-separated):
 *   `host`               https only, default port only
 *   `*.example.com`      https, any sub-domain (not the apex), default port only
 *   `https://host:8443`  that scheme and port exactly
 *   `http://127.0.0.1:4100`  plain http is possible only when spelled out like this (sandboxes)
 * Hosts compare after WHATWG URL parsing, so look-alikes such as `allowed.example.com.evil.test`,
 * `https://allowed.example.com@evil.test/` or `https://evil.test/allowed.example.com` resolve to
 * the host they really name and are refused; IP literals match only when listed literally.
 */

/**
 * A callback URL the allow-list does not cover. The API refuses such an invocation; a worker that
 * meets one in a queued job (the allow-list changed since, or the job was altered in Redis) must
 * not call it either.
 */
export class CallbackUrlNotAllowedError extends Error {
  readonly code = 'CALLBACK_URL_NOT_ALLOWED'
  constructor (readonly reason: string) {
    super(`the callback URL is not allowed: ${reason}`)
    this.name = 'CallbackUrlNotAllowedError'
  }
}

export interface CallbackHostRule {
  readonly protocol: 'https:' | 'http:'
  /** Lower-case host name, or bracketed IPv6 literal as URL.hostname gives it. */
  readonly hostname: string
  /** Sub-domains of `hostname` match (the apex does not). */
  readonly wildcard: boolean
  /** Empty string means the protocol's default port. */
  readonly port: string
}

export type CallbackUrlCheck =
  | { readonly allowed: true; readonly url: URL }
  | { readonly allowed: false; readonly reason: string }

export function parseCallbackHostAllowList (list: string): CallbackHostRule[] {
  const entries = list.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  if (entries.length === 0) throw new Error('the allow-list is empty')
  return entries.map(parseRule)
}

function parseRule (entry: string): CallbackHostRule {
  const hasScheme = /^[a-z]+:\/\//i.test(entry)
  const wildcard = !hasScheme && entry.startsWith('*.')
  const text = hasScheme ? entry : `https://${wildcard ? entry.slice(2) : entry}`
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new Error(`"${entry}" is not a host name or origin`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`"${entry}" must use http or https`)
  }
  if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new Error(`"${entry}" must be a bare host or origin`)
  }
  return { protocol: url.protocol, hostname: url.hostname, wildcard, port: url.port }
}

export function checkCallbackUrl (candidate: string, rules: readonly CallbackHostRule[]): CallbackUrlCheck {
  let url: URL
  try {
    url = new URL(candidate)
  } catch {
    return { allowed: false, reason: 'not an absolute URL' }
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { allowed: false, reason: `scheme "${url.protocol.replace(':', '')}" is not allowed` }
  }
  if (url.username !== '' || url.password !== '') {
    return { allowed: false, reason: 'credentials in the URL are not allowed' }
  }
  const match = rules.some((rule) =>
    rule.protocol === url.protocol &&
    rule.port === url.port &&
    (rule.wildcard ? url.hostname.endsWith(`.${rule.hostname}`) : url.hostname === rule.hostname))
  if (!match) return { allowed: false, reason: `host "${url.host}" is not on the allow-list` }
  return { allowed: true, url }
}
