import type { AccessTokenProvider } from '../dynamics/access-token-provider.ts'
import { DataverseError } from '../dynamics/dataverse-errors.ts'

/**
 * The service's own Dataverse user: the `WhoAmI` function answers `UserId`, the systemuser the
 * application user is, which Dataverse records in `_modifiedby_value` of every row the service writes
 * (dataverse-web-api-and-msal.md; issue 12 §6). One GET, made once per worker process.
 * TODO(merge): a `whoAmI()` on DataverseClient would bring its retry and concurrency policy here.
 */
export async function fetchServiceUserId (environmentUrl: string, tokens: AccessTokenProvider, timeoutMs: number): Promise<string> {
  const response = await fetch(`${environmentUrl.replace(/\/+$/, '')}/api/data/v9.2/WhoAmI`, {
    headers: {
      Authorization: `Bearer ${await tokens.getAccessToken()}`,
      Accept: 'application/json',
      'OData-MaxVersion': '4.0',
      'OData-Version': '4.0'
    },
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'error'
  })
  const body = await response.json().catch(() => ({})) as { UserId?: unknown }
  if (!response.ok || typeof body.UserId !== 'string') throw new DataverseError(response.status, 'WHO_AM_I_FAILED', `WhoAmI answered HTTP ${response.status} without a UserId`)
  return body.UserId.toLowerCase()
}
