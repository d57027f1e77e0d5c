import { loadConfig } from '../../src/config.ts'
import { ConfigError } from '../../src/errors.ts'

/**
 * The least environment `loadConfig` accepts: every required variable, with values of the right
 * shape and no meaning (nothing is called at these URLs). Tests spread it and change what they test.
 */
export const REQUIRED_ENVIRONMENT: Readonly<Record<string, string>> = Object.freeze({
  SSFS_API_KEY: 'a-long-enough-api-key',
  MARKETO_BASE_URL: 'https://123-ABC-456.mktorest.com',
  MARKETO_CLIENT_ID: 'mkto-id',
  MARKETO_CLIENT_SECRET: 'mkto-secret',
  DYNAMICS_URL: 'https://contoso.crm.dynamics.com',
  AZURE_TENANT_ID: '11111111-1111-1111-1111-111111111111',
  AZURE_CLIENT_ID: 'client',
  AZURE_CLIENT_SECRET: 'secret'
})

/** The problems `loadConfig` names for `environment` (none: it loads). */
export function configProblems (environment: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig(environment)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}
