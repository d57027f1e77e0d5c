import t from 'tap'
import { loadConfig } from '../src/config.ts'
import { ConfigError } from '../src/errors.ts'

const valid = {
  SSFS_API_KEY: 'a-long-enough-api-key',
  MARKETO_BASE_URL: 'https://123-ABC-456.mktorest.com/',
  MARKETO_CLIENT_ID: 'mkto-id',
  MARKETO_CLIENT_SECRET: 'mkto-secret',
  DYNAMICS_URL: 'https://contoso.crm.dynamics.com',
  AZURE_TENANT_ID: '11111111-1111-1111-1111-111111111111',
  AZURE_CLIENT_ID: 'client',
  AZURE_CLIENT_SECRET: 'secret'
}

function problemsOf (env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

t.test('a complete environment gives a frozen, typed config with documented defaults', async (t) => {
  const config = loadConfig(valid)
  t.equal(config.http.port, 3000)
  t.equal(config.marketo.baseUrl, 'https://123-ABC-456.mktorest.com', 'trailing slash dropped')
  t.equal(config.azure.authorityHost, 'https://login.microsoftonline.com')
  t.same(config.azure.credential, { kind: 'secret', clientSecret: 'secret' })
  t.same(config.ssfs.callbackHosts.map((r) => r.hostname), ['mkto-cfa.adobe.io'])
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.http))
  t.equal(config.ssfs.jobSealingKey, valid.SSFS_API_KEY, 'the sealing key defaults to the API key')
  t.equal(loadConfig({ ...valid, JOB_SEALING_KEY: 'k'.repeat(32) }).ssfs.jobSealingKey, 'k'.repeat(32))
})

t.test('every missing required value is named at once', async (t) => {
  const problems = problemsOf({})
  for (const name of ['SSFS_API_KEY', 'MARKETO_BASE_URL', 'MARKETO_CLIENT_ID', 'MARKETO_CLIENT_SECRET', 'DYNAMICS_URL', 'AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET']) {
    t.ok(problems.some((p) => p.startsWith(name)), `${name} named`)
  }
})

t.test('malformed values are refused with the variable and the bad value', async (t) => {
  t.match(problemsOf({ ...valid, PORT: 'eighty' }), [/PORT must be an integer from 0 to 65535, got "eighty"/])
  t.match(problemsOf({ ...valid, DYNAMICS_URL: 'contoso' }), [/DYNAMICS_URL must be an absolute URL/])
  t.match(problemsOf({ ...valid, AZURE_AUTHORITY_HOST: 'http://login.example' }), [/AZURE_AUTHORITY_HOST must use https/])
  t.match(problemsOf({ ...valid, REDIS_URL: 'http://localhost' }), [/REDIS_URL must use redis or rediss/])
  t.match(problemsOf({ ...valid, SSFS_API_KEY: 'short' }), [/SSFS_API_KEY must be at least 16/])
  t.match(problemsOf({ ...valid, MARKETO_CALLBACK_HOSTS: 'ftp://x.example' }), [/MARKETO_CALLBACK_HOSTS: "ftp:\/\/x.example" must use http or https/])
  t.match(problemsOf({ ...valid, LOG_LEVEL: 'loud' }), [/LOG_LEVEL must be one of/])
  t.match(problemsOf({ ...valid, WORKER_LOCK_DURATION_MS: '10' }), [/WORKER_LOCK_DURATION_MS must be an integer from 1000/])
  t.match(problemsOf({ ...valid, WORKER_STALLED_INTERVAL_MS: 'soon' }), [/WORKER_STALLED_INTERVAL_MS must be an integer/])
  t.match(problemsOf({ ...valid, FLOW_STEP_ATTEMPTS: '0' }), [/FLOW_STEP_ATTEMPTS must be an integer from 1 to 50/])
  t.match(problemsOf({ ...valid, EMAIL_CLAIM_TTL_MS: '500' }), [/EMAIL_CLAIM_TTL_MS must be an integer from 1000/])
  t.match(problemsOf({ ...valid, JOB_SEALING_KEY: 'too-short' }), [/JOB_SEALING_KEY must be at least 32/])
  t.match(problemsOf({ ...valid, AZURE_CLIENT_CERTIFICATE_PATH: '/nonexistent.pem' }), [/either AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH/, /cannot be read: ENOENT/])
})

t.test('the error message lists the problems, not a stack', async (t) => {
  try {
    loadConfig({ ...valid, PORT: '-1' })
    t.fail('should throw')
  } catch (error) {
    t.type(error, ConfigError)
    t.match((error as Error).message, /^invalid configuration:\n {2}- PORT/)
  }
})
