import t from 'tap'
import Fastify from 'fastify'
import healthRoutes from '../../routes/health.ts'
import { cachedCheck, checkDependencies, readinessStatus, type DependencyCheck } from '../../src/metrics/readiness.ts'

/** Readiness: a required dependency down is a 503; an optional one (the API's Dynamics token) only degrades it. */

t.test('readinessStatus: unavailable when a required dependency failed, degraded when only an optional one did', async (t) => {
  t.equal(readinessStatus([{ name: 'redis', ok: true }, { name: 'dynamics-token', ok: true, optional: true }]), 'ok')
  t.equal(readinessStatus([{ name: 'redis', ok: true }, { name: 'dynamics-token', ok: false, optional: true, code: 'AZURE_AD_UNAVAILABLE' }]), 'degraded')
  t.equal(readinessStatus([{ name: 'redis', ok: false }, { name: 'dynamics-token', ok: true, optional: true }]), 'unavailable')
  t.equal(readinessStatus([{ name: 'marketo-token', ok: false }]), 'unavailable', 'a check is required unless marked optional')
})

async function readyAnswer (t: { teardown (fn: () => Promise<void>): void }, redisUp: boolean, checks: DependencyCheck[]): Promise<{ status: number, body: Record<string, unknown> }> {
  const app = Fastify()
  await app.register(healthRoutes, { redis: { ping: async () => { if (!redisUp) throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' }); return 'PONG' } }, checks })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  const response = await fetch(`${url}/health/ready`)
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

const azureAdDown: DependencyCheck = { name: 'dynamics-token', optional: true, check: async () => { throw Object.assign(new Error('no token'), { code: 'AZURE_AD_UNAVAILABLE' }) } }

t.test('an Azure AD outage leaves the API ready (200, degraded) and names the failed dependency', async (t) => {
  const { status, body } = await readyAnswer(t, true, [azureAdDown])
  t.equal(status, 200, 'still taking invocations: a load balancer keeps it in rotation')
  t.match(body, { status: 'degraded', redis: true, checks: [{ name: 'redis', ok: true }, { name: 'dynamics-token', ok: false, optional: true, code: 'AZURE_AD_UNAVAILABLE' }] })
})

t.test('Redis down: 503, unavailable, whatever the optional checks say', async (t) => {
  const { status, body } = await readyAnswer(t, false, [azureAdDown])
  t.equal(status, 503)
  t.match(body, { status: 'unavailable', redis: false })
})

/** A dependency whose answer never comes: a worker's ping while Redis is down (the offline queue holds it). */
const neverSettles: DependencyCheck = { name: 'marketo-token', check: async () => await new Promise<void>(() => {}) }

t.test('a check that never settles is reported as TIMEOUT, and the probe answers (503)', async (t) => {
  const started = Date.now()
  const { status, body } = await readyAnswer(t, true, [neverSettles])
  t.equal(status, 503)
  t.match(body, { status: 'unavailable', checks: [{ name: 'redis', ok: true }, { name: 'marketo-token', ok: false, code: 'TIMEOUT' }] })
  t.ok(Date.now() - started < 5_000, 'answered after the 2 s timeout, not never')
})

t.test('a cached check that never settles: TIMEOUT, from its state and from its check', async (t) => {
  const cached = cachedCheck(neverSettles, { timeoutMs: 50 })
  t.same(await checkDependencies([cached], { timeoutMs: 10_000 }), [{ name: 'marketo-token', ok: false, code: 'TIMEOUT' }], 'the cached state itself settles')
  await t.rejects(cached.check(), { code: 'TIMEOUT' })
  t.same(await checkDependencies([neverSettles], { timeoutMs: 50 }), [{ name: 'marketo-token', ok: false, code: 'TIMEOUT' }])
})
