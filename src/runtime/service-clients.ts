import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { createMsalAccessTokenProvider } from '../dynamics/access-token-provider.ts'
import { DataverseClient } from '../dynamics/dataverse-client.ts'
import { MarketoRestClient } from '../marketo/marketo-rest-client.ts'
import { createSealedBox, type SealedBox } from '../crypto/sealed-box.ts'

/** The outside-world clients, built from config in one place for the API, the worker and tests. */

export function createDataverseClient (config: Config, logger: Logger): DataverseClient {
  return new DataverseClient({
    url: config.dynamics.url,
    tokens: createMsalAccessTokenProvider({
      authorityHost: config.azure.authorityHost,
      tenantId: config.azure.tenantId,
      clientId: config.azure.clientId,
      credential: config.azure.credential,
      resourceUrl: config.dynamics.url
    }),
    logger: logger.child({ client: 'dataverse' }),
    maxConcurrentRequests: config.dynamics.maxConcurrentRequests,
    requestTimeoutMs: config.dynamics.requestTimeoutMs
  })
}

export function createMarketoRestClient (config: Config): MarketoRestClient {
  return new MarketoRestClient({
    baseUrl: config.marketo.baseUrl,
    clientId: config.marketo.clientId,
    clientSecret: config.marketo.clientSecret
  })
}

/** API seals Marketo's callback credentials into job data; the worker opens them. Same key on both. */
export function createCallbackCredentialsBox (config: Config): SealedBox {
  return createSealedBox(config.ssfs.jobSealingKey, 'callback-credentials')
}
