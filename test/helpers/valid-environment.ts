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
