import { randomBytes, randomUUID } from 'node:crypto'
import { decodeJwt, hasValidHs256Signature, nowSeconds, signHs256Jwt } from './jwt.ts'

/**
 * Access tokens the emulator issues. Real Azure AD signs with RS256 keys published at `jwks_uri`;
 * MSAL never looks inside a Bearer token (reference doc §8.3) and the only verifier is the Dataverse
 * emulator in the same process, so HS256 with a key drawn at start-up is enough: a token from
 * another emulator run, or a forged one, does not verify.
 */

export interface IssuedAccessToken {
  readonly accessToken: string
  readonly expiresIn: number
}

export interface AccessTokenIssuer {
  issue (grant: { clientId: string, audience: string }): IssuedAccessToken
  verify (token: string, expectation?: { audience?: string }): boolean
}

export function createAccessTokenIssuer (options: { tenantId: string, lifetimeSeconds: number }): AccessTokenIssuer {
  const key = randomBytes(32)
  // Dataverse accepts v1 tokens; their issuer is the STS form, not the v2 authority URL.
  const issuer = `https://sts.windows.net/${options.tenantId}/`

  return {
    issue ({ clientId, audience }) {
      const issuedAt = nowSeconds()
      const accessToken = signHs256Jwt({
        aud: audience,
        iss: issuer,
        iat: issuedAt,
        nbf: issuedAt,
        exp: issuedAt + options.lifetimeSeconds,
        appid: clientId,
        azp: clientId,
        appidacr: '1',
        idtyp: 'app',
        tid: options.tenantId,
        sub: clientId,
        oid: clientId,
        uti: randomUUID(),
        ver: '1.0'
      }, key)
      return { accessToken, expiresIn: options.lifetimeSeconds }
    },

    verify (token, expectation = {}) {
      let jwt
      try {
        jwt = decodeJwt(token)
      } catch {
        return false
      }
      if (!hasValidHs256Signature(jwt, key)) return false
      const { exp, aud } = jwt.payload
      if (typeof exp !== 'number' || exp <= nowSeconds()) return false
      if (expectation.audience !== undefined && normaliseAudience(String(aud)) !== normaliseAudience(expectation.audience)) {
        return false
      }
      return true
    }
  }
}

/** `https://org.example/` and `https://org.example` name the same resource. */
export function normaliseAudience (audience: string): string {
  return audience.replace(/\/+$/, '').toLowerCase()
}

/**
 * `https://org.example/.default` → `https://org.example` (the client-credentials scope form; reference
 * doc §8.1). Returns undefined for a scope that is not `<resource>/.default`, which AAD refuses for
 * this grant.
 */
export function resourceOfDefaultScope (scope: string): string | undefined {
  const resourceScope = scope.split(' ').find((item) => item.endsWith('/.default'))
  if (resourceScope === undefined) return undefined
  const resource = resourceScope.slice(0, -'/.default'.length)
  return resource === '' ? undefined : resource
}
