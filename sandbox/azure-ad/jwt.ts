import { constants, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto'

/**
 * Just enough JWS compact serialisation for the emulator: HS256 for the access tokens it issues,
 * RS256/PS256 verification for the client assertions MSAL sends (MSAL 7 signs them with PS256 when
 * given `thumbprintSha256`, RS256 with the legacy SHA-1 `thumbprint` — msal-node
 * `src/client/ClientAssertion.ts`).
 */

export type JwtClaims = Record<string, unknown>

export interface DecodedJwt {
  readonly header: Record<string, unknown>
  readonly payload: JwtClaims
  /** `<header>.<payload>` as sent: the bytes the signature covers. */
  readonly signingInput: string
  readonly signature: Buffer
}

export class MalformedJwtError extends Error {
  readonly code = 'MALFORMED_JWT'
  constructor (message: string) {
    super(message)
    this.name = 'MalformedJwtError'
  }
}

function encodeSegment (value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

export function signHs256Jwt (claims: JwtClaims, key: Buffer): string {
  const signingInput = `${encodeSegment({ typ: 'JWT', alg: 'HS256' })}.${encodeSegment(claims)}`
  const signature = createHmac('sha256', key).update(signingInput).digest('base64url')
  return `${signingInput}.${signature}`
}

export function decodeJwt (token: string): DecodedJwt {
  const parts = token.split('.')
  if (parts.length !== 3) throw new MalformedJwtError('a JWS compact token has three segments')
  const [headerSegment = '', payloadSegment = '', signatureSegment = ''] = parts
  const header = parseSegment(headerSegment)
  const payload = parseSegment(payloadSegment)
  return {
    header,
    payload,
    signingInput: `${headerSegment}.${payloadSegment}`,
    signature: Buffer.from(signatureSegment, 'base64url')
  }
}

function parseSegment (segment: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    throw new MalformedJwtError('a JWT segment is not base64url-encoded JSON')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new MalformedJwtError('a JWT segment is not a JSON object')
  }
  return parsed as Record<string, unknown>
}

export function hasValidHs256Signature (jwt: DecodedJwt, key: Buffer): boolean {
  if (jwt.header.alg !== 'HS256') return false
  const expected = createHmac('sha256', key).update(jwt.signingInput).digest()
  return expected.length === jwt.signature.length && timingSafeEqual(expected, jwt.signature)
}

/** RS256 / PS256 only; anything else (notably `none` and HS*) is refused. */
export function hasValidRsaSignature (jwt: DecodedJwt, publicKey: KeyObject): boolean {
  const data = Buffer.from(jwt.signingInput)
  try {
    if (jwt.header.alg === 'RS256') {
      return verify('sha256', data, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, jwt.signature)
    }
    if (jwt.header.alg === 'PS256') {
      return verify('sha256', data, {
        key: publicKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_AUTO
      }, jwt.signature)
    }
  } catch {
    return false
  }
  return false
}

export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}
