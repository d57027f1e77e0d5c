import pino from 'pino'
import { DataverseClient, type DataverseClientOptions } from '../../src/dynamics/dataverse-client.ts'

/**
 * Our Dataverse client pointed at an emulator, for tests of what sits on top of it: the emulator
 * takes any bearer token (MSAL itself is proven in test/contract/msal-node.test.ts), logs are
 * silent, and retries wait milliseconds instead of seconds. `overrides` change any of it.
 */
export function dataverseTestClient (url: string, overrides: Partial<DataverseClientOptions> = {}): DataverseClient {
  return new DataverseClient({
    url,
    tokens: { getAccessToken: async () => 'any-bearer-the-emulator-accepts' },
    logger: pino({ level: 'silent' }),
    maxConcurrentRequests: 4,
    requestTimeoutMs: 2_000,
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...overrides
  })
}
