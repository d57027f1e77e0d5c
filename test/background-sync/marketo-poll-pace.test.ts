import t from 'tap'
import {
  AFTER_RESET_MARGIN_MS, MARKETO_POLL_SHARE, decideNextMarketoPoll, plannedCalls, pollShareCalls,
  type LastMarketoPass, type MarketoPollPaceInput
} from '../../src/background-sync/marketo-poll-pace.ts'

/**
 * When Marketo's lead-change feed is read next (issue 12 §11): faster while changes flow, slower when
 * idle, never planning more polls than the share of the budget left for the rest of the day, and
 * nothing after a 607 until Marketo's reset.
 */

const DAY_MS = 86_400_000
const FLOOR = 5_000
const CEILING = 300_000

/** The defaults, at the start of a Marketo day with nothing spent. */
const freshDay: MarketoPollPaceInput = {
  remainingCalls: 5_000,
  dailyBudget: 5_000,
  pollCallsToday: 0,
  msUntilReset: DAY_MS,
  callsPerIdlePoll: 1,
  lastPass: { kind: 'idle' },
  floorMs: FLOOR,
  ceilingMs: CEILING
}

t.test('at idle with the default budget the feed is read every 34.6 s: half of 5,000 calls spread over the day', async (t) => {
  const decision = decideNextMarketoPoll(freshDay)
  t.same(decision, { delayMs: Math.ceil(DAY_MS / 2_500), pace: 'idle' })
})

t.test('a pass that found changes brings the next poll at the floor', async (t) => {
  t.same(decideNextMarketoPoll({ ...freshDay, lastPass: { kind: 'changes', pages: 1 }, previousDelayMs: 34_560 }), { delayMs: FLOOR, pace: 'fast' })
  t.same(decideNextMarketoPoll({ ...freshDay, lastPass: { kind: 'changes', pages: 10 } }), { delayMs: FLOOR, pace: 'fast' })
})

t.test('once a pass finds nothing, the delay doubles from the floor back to the idle pace', async (t) => {
  const delays: number[] = []
  let previousDelayMs = FLOOR
  for (let i = 0; i < 5; i++) {
    const decision = decideNextMarketoPoll({ ...freshDay, previousDelayMs })
    delays.push(decision.delayMs)
    previousDelayMs = decision.delayMs
  }
  t.same(delays, [10_000, 20_000, 34_560, 34_560, 34_560])
  t.equal(decideNextMarketoPoll({ ...freshDay, previousDelayMs: FLOOR }).pace, 'slowing')
})

t.test('with budget to spare the idle pace is the floor, and never faster', async (t) => {
  t.same(decideNextMarketoPoll({ ...freshDay, remainingCalls: 1_000_000, dailyBudget: 1_000_000 }), { delayMs: FLOOR, pace: 'idle' })
})

t.test('fast polls stop once what is left pays only for polls at the ceiling until the reset', async (t) => {
  // 8 h before the reset, polls at the 5 min ceiling need 96 calls: a share of 96 buys no fast poll.
  const eightHours = { ...freshDay, msUntilReset: 8 * 3_600_000, lastPass: { kind: 'changes', pages: 1 } } as const
  t.same(decideNextMarketoPoll({ ...eightHours, remainingCalls: 192 }), { delayMs: CEILING, pace: 'budget' })
  t.same(decideNextMarketoPoll({ ...eightHours, remainingCalls: 194 }), { delayMs: FLOOR, pace: 'fast' }, 'one more call in the share buys one fast poll')
})

t.test('a nearly spent budget slows polling past the ceiling: the budget is the hard limit', async (t) => {
  const nearlySpent = { ...freshDay, remainingCalls: 40 }
  const decision = decideNextMarketoPoll(nearlySpent)
  t.equal(decision.pace, 'budget')
  t.equal(decision.delayMs, Math.ceil(DAY_MS / 20), '20 polls (half of 40) spread over the day')
  t.equal(decideNextMarketoPoll({ ...nearlySpent, lastPass: { kind: 'changes', pages: 1 } }).pace, 'budget', 'changes do not buy a fast poll the share cannot pay')
})

t.test('what the other spenders took slows polling: half of what is left, not of the day', async (t) => {
  const othersSpentHalf = decideNextMarketoPoll({ ...freshDay, remainingCalls: 2_500 })
  t.equal(othersSpentHalf.delayMs, Math.ceil(DAY_MS / 1_250))
})

t.test('the polls already made today count against polling\'s half of the day', async (t) => {
  // Polling spent 2,000 of its 2,500, nobody else spent anything: 500 left for the polls, not 1,500.
  t.equal(pollShareCalls({ remainingCalls: 3_000, dailyBudget: 5_000, pollCallsToday: 2_000 }), 500)
  t.equal(decideNextMarketoPoll({ ...freshDay, remainingCalls: 3_000, pollCallsToday: 2_000 }).delayMs, Math.ceil(DAY_MS / 500))
})

t.test('a 607 or a spent budget: the next poll a minute after Marketo\'s reset', async (t) => {
  const msUntilReset = 5 * 3_600_000
  t.same(decideNextMarketoPoll({ ...freshDay, msUntilReset, lastPass: { kind: 'quota-spent' } }), { delayMs: msUntilReset + AFTER_RESET_MARGIN_MS, pace: 'after-reset' })
  t.same(decideNextMarketoPoll({ ...freshDay, msUntilReset, remainingCalls: 1 }), { delayMs: msUntilReset + AFTER_RESET_MARGIN_MS, pace: 'after-reset' }, 'half a call buys no poll')
  t.same(decideNextMarketoPoll({ ...freshDay, msUntilReset, pollCallsToday: 2_500 }), { delayMs: msUntilReset + AFTER_RESET_MARGIN_MS, pace: 'after-reset' }, 'polling\'s half of the day is spent')
})

t.test('a plan that would end past the reset waits for the reset instead', async (t) => {
  t.equal(decideNextMarketoPoll({ ...freshDay, msUntilReset: 3_000 }).pace, 'after-reset', 'three seconds before the reset, below the floor')
})

/** mulberry32: a tiny deterministic PRNG, so a failing case replays from its seed. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
}

const BASE_SEED = Number(process.env.POLL_PACE_SEED ?? 20261202)

t.test('generated inputs: the plan (next poll, then one per slowest pace to the reset) fits in the share; floor and ceiling hold', async (t) => {
  for (let i = 0; i < 20_000; i++) {
    const random = prng(BASE_SEED + i)
    const dailyBudget = [10, 100, 5_000, 50_000, 1_000_000][Math.floor(random() * 5)]!
    const floorMs = [200, 1_000, 5_000, 60_000][Math.floor(random() * 4)]!
    const ceilingMs = floorMs * [1, 2, 10, 60][Math.floor(random() * 4)]!
    const lastPass: LastMarketoPass = random() < 0.1 ? { kind: 'quota-spent' } : random() < 0.5 ? { kind: 'changes', pages: 1 + Math.floor(random() * 10) } : { kind: 'idle' }
    const input: MarketoPollPaceInput = {
      dailyBudget,
      remainingCalls: Math.floor(random() * dailyBudget),
      pollCallsToday: Math.floor(random() * MARKETO_POLL_SHARE * dailyBudget),
      msUntilReset: 1 + Math.floor(random() * DAY_MS),
      callsPerIdlePoll: 1 + Math.floor(random() * 2),
      lastPass,
      ...(random() < 0.5 ? {} : { previousDelayMs: floorMs * (1 + Math.floor(random() * 100)) }),
      floorMs,
      ceilingMs
    }
    const decision = decideNextMarketoPoll(input)
    const where = `case ${BASE_SEED + i}: ${JSON.stringify(input)} → ${JSON.stringify(decision)}`
    if (decision.delayMs < floorMs) { t.fail(`faster than the floor, ${where}`); return }
    if (decision.pace === 'after-reset') {
      if (decision.delayMs < input.msUntilReset) { t.fail(`a spent share polls before the reset, ${where}`); return }
      continue
    }
    if (plannedCalls(input, decision) > pollShareCalls(input)) { t.fail(`the plan spends more than the share, ${where}`); return }
    if (decision.pace !== 'budget' && decision.delayMs > ceilingMs) { t.fail(`slower than the ceiling without the budget forcing it, ${where}`); return }
  }
  t.pass('20,000 generated inputs')
})

t.test('generated days: whatever the sequence of passes and of other spending, polls stay within their half, and the other half stays for the others', async (t) => {
  for (let day = 0; day < 300; day++) {
    const random = prng(BASE_SEED * 7 + day)
    const dailyBudget = [50, 500, 5_000][Math.floor(random() * 3)]!
    const floorMs = [5_000, 30_000][Math.floor(random() * 2)]!
    const ceilingMs = floorMs * [1, 10, 60][Math.floor(random() * 3)]!
    const changeRate = random()
    const othersRate = random() * 2 // calls the others ask for per poll interval, on average
    let msUntilReset = DAY_MS
    let spent = 0
    let pollCalls = 0
    let othersCalls = 0
    let othersWanted = 0
    let previousDelayMs: number | undefined
    let lastPass: LastMarketoPass = { kind: 'idle' }
    const steps: string[] = []
    for (;;) {
      const decision = decideNextMarketoPoll({ remainingCalls: dailyBudget - spent, dailyBudget, pollCallsToday: pollCalls, msUntilReset, callsPerIdlePoll: 1, lastPass, ...(previousDelayMs === undefined ? {} : { previousDelayMs }), floorMs, ceilingMs })
      steps.push(`${decision.pace}:${decision.delayMs}`)
      // The others spend while polling waits, at most what is left.
      const wanted = Math.floor(othersRate * random() * decision.delayMs / floorMs)
      const others = Math.min(wanted, dailyBudget - spent)
      othersWanted += wanted
      othersCalls += others
      spent += others
      if (decision.delayMs >= msUntilReset) break
      msUntilReset -= decision.delayMs
      // The poll: one page when idle, up to 3 when changes flow; a page the budget cannot pay is refused (607-like).
      const pages = random() < changeRate ? 1 + Math.floor(random() * 3) : 1
      const paid = Math.min(pages, dailyBudget - spent)
      spent += paid
      pollCalls += paid
      lastPass = paid < pages ? { kind: 'quota-spent' } : pages > 1 || random() < changeRate ? { kind: 'changes', pages } : { kind: 'idle' }
      previousDelayMs = decision.delayMs
    }
    const where = `day ${BASE_SEED * 7 + day} (budget ${dailyBudget}, floor ${floorMs}, ceiling ${ceilingMs}): ${steps.slice(-5).join(' ')}`
    // A pass that reads more pages than its plan charged can overshoot by its extra pages once.
    if (pollCalls > MARKETO_POLL_SHARE * dailyBudget + 2) { t.fail(`polls spent ${pollCalls}, ${where}`); return }
    // Whatever polling spent, the others were never refused a call while polling still had half of the day left.
    if (othersCalls < Math.min(othersWanted, dailyBudget - MARKETO_POLL_SHARE * dailyBudget - 2)) { t.fail(`the others got ${othersCalls} of ${othersWanted}, ${where}`); return }
  }
  t.pass('300 generated days')
})
