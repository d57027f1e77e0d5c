import t from 'tap'
import { loadConfig } from '../src/config.ts'
import { ConfigError } from '../src/errors.ts'
import { configProblems } from './helpers/valid-environment.ts'

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

const problemsOf = configProblems

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

t.test('the key of email digests in Redis is derived from the job sealing key: the same in every process, never the key itself', async (t) => {
  const sealed = { ...valid, JOB_SEALING_KEY: 's'.repeat(32) }
  const secret = loadConfig(sealed).redis.keyHashSecret
  t.match(secret, /^[0-9a-f]{64}$/)
  t.equal(loadConfig(sealed).redis.keyHashSecret, secret, 'a second process with the same environment agrees')
  t.not(secret, sealed.JOB_SEALING_KEY)
  t.not(loadConfig({ ...valid, JOB_SEALING_KEY: 't'.repeat(32) }).redis.keyHashSecret, secret, 'another sealing key, another secret')
  t.not(loadConfig(valid).redis.keyHashSecret, loadConfig(valid).ssfs.jobSealingKey)
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
  t.match(problemsOf({ ...valid, SHUTDOWN_DEADLINE_MS: '500' }), [/SHUTDOWN_DEADLINE_MS must be an integer from 1000/])
  t.match(problemsOf({ ...valid, WORKER_STALLED_INTERVAL_MS: 'soon' }), [/WORKER_STALLED_INTERVAL_MS must be an integer/])
  t.match(problemsOf({ ...valid, FLOW_STEP_ATTEMPTS: '0' }), [/FLOW_STEP_ATTEMPTS must be an integer from 1 to 50/])
  t.match(problemsOf({ ...valid, EMAIL_CLAIM_TTL_MS: '500' }), [/EMAIL_CLAIM_TTL_MS must be an integer from 1000/])
  t.match(problemsOf({ ...valid, JOB_SEALING_KEY: 'too-short' }), [/JOB_SEALING_KEY must be at least 32/])
  t.match(problemsOf({ ...valid, AZURE_CLIENT_CERTIFICATE_PATH: '/nonexistent.pem' }), [/either AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH/, /cannot be read: ENOENT/])
})

t.test('Dynamics and Marketo take plain http only on this machine\'s loopback; https anywhere', async (t) => {
  for (const url of ['http://127.0.0.1:4200', 'http://127.9.8.7', 'http://127.1:4100', 'http://localhost:4100', 'http://LOCALHOST', 'http://[::1]:4200', 'https://contoso.crm.dynamics.com', 'https://10.0.0.5']) {
    t.same(problemsOf({ ...valid, DYNAMICS_URL: url, MARKETO_BASE_URL: url }), [], `${url} accepted`)
  }
  for (const url of ['http://contoso.crm.dynamics.com', 'http://10.0.0.5', 'http://128.0.0.1', 'http://127.0.0.1.nip.io', 'http://localhost.example.com', 'http://[::2]', 'http://[::ffff:10.0.0.1]', 'http://0.0.0.0']) {
    t.match(problemsOf({ ...valid, DYNAMICS_URL: url }), [/^DYNAMICS_URL must use https \(plain http only for 127\.0\.0\.0\/8, ::1 or localhost\)/], `${url} refused for Dynamics`)
    t.match(problemsOf({ ...valid, MARKETO_BASE_URL: url }), [/^MARKETO_BASE_URL must use https/], `${url} refused for Marketo`)
  }
})

t.test('a Redis Cluster is named by REDIS_CLUSTER=true, with REDIS_URL as its seed node', async (t) => {
  t.equal(loadConfig(valid).redis.cluster, false, 'one Redis unless told otherwise')
  t.equal(loadConfig({ ...valid, REDIS_CLUSTER: 'true', REDIS_URL: 'rediss://cache.example:6380' }).redis.cluster, true)
  t.match(problemsOf({ ...valid, REDIS_CLUSTER: 'yes' }), [/REDIS_CLUSTER must be true or false, got "yes"/])
  t.match(problemsOf({ ...valid, REDIS_CLUSTER: 'true', REDIS_URL: 'redis://10.0.0.1:6379/2' }), [/REDIS_URL must not name a database with REDIS_CLUSTER=true .*"\/2"/])
  t.same(problemsOf({ ...valid, REDIS_CLUSTER: 'true', REDIS_URL: 'redis://10.0.0.1:6379/0' }), [], 'database 0 is the cluster\'s only one')
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

t.test('Dataverse requests in flight across every worker default to 48 and stay within Dataverse\'s 52 per user', async (t) => {
  t.equal(loadConfig(valid).dynamics.sharedConcurrentRequests, 48)
  t.equal(loadConfig(valid).dynamics.maxConcurrentRequests, 16, 'the per-process limit keeps its meaning')
  t.equal(loadConfig({ ...valid, DYNAMICS_TOTAL_CONCURRENCY: '52' }).dynamics.sharedConcurrentRequests, 52)
  t.match(problemsOf({ ...valid, DYNAMICS_TOTAL_CONCURRENCY: '53' }), [/DYNAMICS_TOTAL_CONCURRENCY must be an integer from 1 to 52, got "53"/])
  t.match(problemsOf({ ...valid, DYNAMICS_TOTAL_CONCURRENCY: '0' }), [/DYNAMICS_TOTAL_CONCURRENCY must be an integer from 1 to 52/])
})

t.test('the support contact Marketo shows defaults to this deployment\'s own API docs, not an address nobody answers', async (t) => {
  t.equal(loadConfig({ ...valid, PUBLIC_URL: 'https://sync.example.com' }).ssfs.supportContact, 'https://sync.example.com/docs')
  t.equal(loadConfig({ ...valid, PUBLIC_URL: 'https://sync.example.com/marketo/' }).ssfs.supportContact, 'https://sync.example.com/marketo/docs')
  t.equal(loadConfig({ ...valid, SSFS_SUPPORT_CONTACT: 'ops@example.com' }).ssfs.supportContact, 'ops@example.com')
})
