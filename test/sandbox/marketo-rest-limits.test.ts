import t, { type Test } from 'tap'
import { startMarketoEmulator, type MarketoEmulator } from '../../sandbox/marketo/index.ts'
import { DOCUMENTED_REST_LIMITS, limitRefusal, quotaDayOf, type RestLimitSettings } from '../../sandbox/marketo/rest-limits.ts'

/**
 * The Marketo emulator's instance limits over real HTTP (shared/reference/marketo-rest-and-ssfs.md
 * §2.3, §2.4): 606 past the calls allowed per window, 615 past the calls allowed in flight, 607
 * once the daily quota is spent — small limits and a hand-driven clock so each is reached at once.
 */

const client = { clientId: 'limits-client', clientSecret: 'limits-secret' }

interface Envelope {
  requestId: string
  success: boolean
  result?: unknown[]
  errors?: Array<{ code: string, message: string }>
}

class ManualClock {
  #ms = Date.parse('2026-03-02T12:00:00Z')
  readonly now = (): Date => new Date(this.#ms)
  advance (ms: number): void {
    this.#ms += ms
  }

  set (iso: string): void {
    this.#ms = Date.parse(iso)
  }
}

async function startEmulator (t: Test, limits: Partial<RestLimitSettings>, clock = new ManualClock()): Promise<MarketoEmulator> {
  const emu = await startMarketoEmulator({
    munchkinId: '123-ABC-456',
    clients: [client],
    seedPersons: [{ email: 'ann.lee@example.com', firstName: 'Ann' }],
    limits,
    now: clock.now,
    // The manual clock would otherwise make tokens expire when it jumps a day.
    tokenLifetimeSeconds: 10 * 86_400
  })
  t.teardown(() => emu.close())
  return emu
}

async function tokenFor (emu: MarketoEmulator): Promise<string> {
  const response = await fetch(`${emu.identityUrl}/oauth/token?grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}`)
  return ((await response.json()) as { access_token: string }).access_token
}

async function getLead (emu: MarketoEmulator, token: string): Promise<Envelope> {
  const response = await fetch(`${emu.restUrl}/v1/lead/1000.json?fields=email`, { headers: { Authorization: `Bearer ${token}` } })
  return await response.json() as Envelope
}

function codeOf (envelope: Envelope): string {
  return envelope.success ? 'ok' : envelope.errors?.[0]?.code ?? 'no code'
}

t.test('the limit decision: quota first, then concurrency, then the window', async (t) => {
  const settings = { callsPerWindow: 2, windowMs: 20_000, maxConcurrent: 1, dailyQuota: 5 }
  t.equal(limitRefusal(settings, { inFlight: 0, callsInWindow: 1, callsToday: 4 }), undefined)
  t.equal(limitRefusal(settings, { inFlight: 1, callsInWindow: 2, callsToday: 5 })?.code, '607')
  t.equal(limitRefusal(settings, { inFlight: 1, callsInWindow: 2, callsToday: 0 })?.code, '615')
  t.match(limitRefusal(settings, { inFlight: 0, callsInWindow: 2, callsToday: 0 }), { code: '606', message: "Max rate limit '2' exceeded with in '20' secs" })
  t.same(DOCUMENTED_REST_LIMITS, { callsPerWindow: 100, windowMs: 20_000, maxConcurrent: 10, dailyQuota: 50_000 }, 'the defaults are Marketo\'s documented limits')
})

t.test('the quota day turns at midnight US Central Standard Time', async (t) => {
  t.equal(quotaDayOf(Date.parse('2026-03-02T05:59:59Z')), quotaDayOf(Date.parse('2026-03-01T06:00:00Z')))
  t.equal(quotaDayOf(Date.parse('2026-03-02T06:00:00Z')), quotaDayOf(Date.parse('2026-03-02T05:59:59Z')) + 1)
})

t.test('606: the calls past the window\'s allowance are refused until the oldest leaves the window', async (t) => {
  const clock = new ManualClock()
  const emu = await startEmulator(t, { callsPerWindow: 3, windowMs: 20_000 }, clock)
  const token = await tokenFor(emu)

  const codes = []
  for (let i = 0; i < 4; i++) {
    codes.push(codeOf(await getLead(emu, token)))
    clock.advance(1000)
  }
  t.same(codes, ['ok', 'ok', 'ok', '606'])
  const refused = await getLead(emu, token)
  t.same(refused.errors, [{ code: '606', message: "Max rate limit '3' exceeded with in '20' secs" }], 'Marketo\'s wording, with this instance\'s numbers')

  clock.advance(16_000)
  t.equal(codeOf(await getLead(emu, token)), 'ok', '20 s after the first call one place is free again')
  t.equal(codeOf(await getLead(emu, token)), '606', 'refused calls did not count, but only one place was freed')
  t.same(emu.limits.usage(), { inFlight: 0, callsInWindow: 3, callsToday: 4 })
})

t.test('615: a call beyond the concurrent allowance is refused while the others are still answering', async (t) => {
  const emu = await startEmulator(t, { maxConcurrent: 2 })
  const token = await tokenFor(emu)
  // Each answer takes 300 ms, so the three calls overlap.
  emu.faults.setLatency(300)

  const envelopes = await Promise.all([getLead(emu, token), getLead(emu, token), getLead(emu, token)])

  t.same(envelopes.map(codeOf).sort(), ['615', 'ok', 'ok'])
  t.same(envelopes.find((envelope) => !envelope.success)?.errors, [{ code: '615', message: "Concurrent access limit '2' reached" }])
  t.equal(emu.limits.usage().inFlight, 0, 'answered calls free their places')
  emu.faults.setLatency(0)
  t.equal(codeOf(await getLead(emu, token)), 'ok')
})

t.test('the emulated latency delays the identity endpoint as well as REST calls', async (t) => {
  const emu = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [client], seedPersons: [{ email: 'ann.lee@example.com' }] })
  t.teardown(() => emu.close())
  emu.faults.setLatency(150)
  const tokenStarted = performance.now()
  const token = await tokenFor(emu)
  t.ok(performance.now() - tokenStarted >= 140, 'the token request waited for the latency')
  const restStarted = performance.now()
  t.equal(codeOf(await getLead(emu, token)), 'ok')
  t.ok(performance.now() - restStarted >= 140, 'a REST call waited for it')
  emu.faults.setLatency(0)
  const fastStarted = performance.now()
  await tokenFor(emu)
  t.ok(performance.now() - fastStarted < 140, 'without latency the token comes at once')
})

t.test('607: once the daily quota is spent every call is refused until midnight CST', async (t) => {
  const clock = new ManualClock()
  clock.set('2026-03-02T05:00:00Z')
  const emu = await startEmulator(t, { dailyQuota: 2 }, clock)
  const token = await tokenFor(emu)

  t.equal(codeOf(await getLead(emu, token)), 'ok')
  t.equal(codeOf(await getLead(emu, token)), 'ok')
  const spent = await getLead(emu, token)
  t.same(spent.errors, [{ code: '607', message: 'Daily quota reached' }])

  clock.set('2026-03-02T06:00:00Z')
  t.equal(codeOf(await getLead(emu, token)), 'ok', 'a new quota day at 00:00 CST (06:00 UTC)')
})

t.test('an invalid token is 601 and does not spend the quota', async (t) => {
  const emu = await startEmulator(t, { dailyQuota: 1 })
  const invalid = await getLead(emu, 'not-a-token:emu')
  t.same(invalid.errors, [{ code: '601', message: 'Access token invalid' }])
  t.equal(codeOf(await getLead(emu, await tokenFor(emu))), 'ok', 'the one call of the quota is still there')
})

t.test('the limits can be read and changed over the HTTP controls', async (t) => {
  const emu = await startEmulator(t, {})
  const put = await fetch(`${emu.url}/_emulator/limits`, { method: 'PUT', body: JSON.stringify({ callsPerWindow: 1, dailyQuota: 10 }) })
  t.equal(put.status, 204)
  const token = await tokenFor(emu)
  t.equal(codeOf(await getLead(emu, token)), 'ok')
  t.equal(codeOf(await getLead(emu, token)), '606')

  const state = await (await fetch(`${emu.url}/_emulator/limits`)).json()
  t.same(state, { settings: { callsPerWindow: 1, windowMs: 20_000, maxConcurrent: 10, dailyQuota: 10 }, usage: { inFlight: 0, callsInWindow: 1, callsToday: 1 } })

  const reset = await fetch(`${emu.url}/_emulator/limits`, { method: 'PUT', body: JSON.stringify({ resetCounters: true }) })
  t.equal(reset.status, 204)
  t.equal(codeOf(await getLead(emu, token)), 'ok', 'counters forgotten')
  const bad = await fetch(`${emu.url}/_emulator/limits`, { method: 'PUT', body: JSON.stringify({ maxConcurrent: -1 }) })
  t.equal(bad.status, 400)
})
