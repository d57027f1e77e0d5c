/**
 * When Marketo's lead-change feed is read next (issue 12 §11): a pure decision on plain numbers.
 *
 * Every read of the feed spends one call of the instance's daily quota (about 50,000, shared by all
 * the customer's integrations, reset at 12:00 AM CST; marketo-rest-and-ssfs.md §2.3 code 607, §2.4),
 * of which we spend at most MARKETO_DAILY_CALL_BUDGET. Polling is the one spender that runs whether
 * or not anything changed, so it gets a share of that budget and no more:
 *
 * - **The share is half** (MARKETO_POLL_SHARE) of what is left today, and never more than half of the
 *   day's budget counted over the polls already made today. The other half stays for the calls that
 *   carry changes: the Dynamics → Marketo direction (a createOrUpdate per 300 records, a Get Leads
 *   by email per 300 unlinked records) and the flow step's reads. Half of the default 5,000 is 2,500
 *   polls a day: one every 34.6 s at idle from the start of a Marketo day, and whatever the others
 *   spend, half of what is left is still theirs. Counting the polls' own calls keeps polling from
 *   drifting into the half the others have not spent yet ("half of what is left", applied poll after
 *   poll, would otherwise end the day having taken nearly all of it).
 * - **The plan** is the next poll, then one every `slowest` until the reset, where `slowest` is the
 *   ceiling, or the even pace when the share cannot pay for the ceiling's. A delay is chosen only
 *   if that whole plan fits in the share; otherwise the next poll waits until it does.
 * - **At idle** the feed is read at the even pace of the share (the share spread evenly over the rest
 *   of the day), held between the floor and the ceiling: polling as often as the budget can keep up
 *   all day gives the shortest lag an idle day can afford.
 * - **While changes flow** (the last pass found some, or Marketo said more were ready) the next poll
 *   comes at the floor, charged in the plan at the pages the last pass read, as long as the plan still
 *   fits. Once a pass finds nothing, the delay doubles from the floor back to the idle pace.
 * - **607, or our budget spent**: nothing is polled until Marketo's reset, and a minute after it so a
 *   clock slightly ahead of Marketo's does not meet the old day's 607 again.
 *
 * The ceiling is the slowest the pace chooses by itself; a budget that cannot pay for polls at the
 * ceiling until the reset makes it slower still (the budget is the hard limit, the ceiling a wish).
 */

/** Polling spends at most this share of the budget (see above for why half). */
export const MARKETO_POLL_SHARE = 0.5

/** After a spent day, the first poll comes this long after Marketo's reset. */
export const AFTER_RESET_MARGIN_MS = 60_000

export type LastMarketoPass =
  /** The pass found changes over `pages` feed pages (≥ 1), or Marketo said more were ready. */
  | { readonly kind: 'changes', readonly pages: number }
  /** Caught up with nothing changed, or failed for a reason other than the quota. */
  | { readonly kind: 'idle' }
  /** Marketo answered 607, or our own daily budget is spent. */
  | { readonly kind: 'quota-spent' }

export interface MarketoPollPaceInput {
  /** Calls left today in our daily budget (every process and direction together). */
  readonly remainingCalls: number
  /** MARKETO_DAILY_CALL_BUDGET. */
  readonly dailyBudget: number
  /** Calls the polls have spent so far this Marketo day. */
  readonly pollCallsToday: number
  /** Until Marketo's daily reset (12:00 AM CST). */
  readonly msUntilReset: number
  /** What one poll that finds nothing costs: one Get Lead Changes call. */
  readonly callsPerIdlePoll: number
  readonly lastPass: LastMarketoPass
  /** The delay chosen after the previous pass, if any: an idle pass doubles it back to the idle pace. */
  readonly previousDelayMs?: number
  /** The fastest pace (SYNC_MARKETO_POLL_INTERVAL_MS). */
  readonly floorMs: number
  /** The slowest pace chosen by itself (SYNC_MARKETO_POLL_MAX_INTERVAL_MS). */
  readonly ceilingMs: number
}

export type MarketoPollPaceKind =
  /** Changes flow: the floor. */
  | 'fast'
  /** Idle after changes: on the way back to the idle pace. */
  | 'slowing'
  /** Idle: the even pace of the share, between floor and ceiling. */
  | 'idle'
  /** Slower than the pace wanted, because the share left cannot pay for it. */
  | 'budget'
  /** Nothing left today: the next poll comes after Marketo's reset. */
  | 'after-reset'

export interface MarketoPollPace {
  readonly delayMs: number
  readonly pace: MarketoPollPaceKind
}

export function decideNextMarketoPoll (input: MarketoPollPaceInput): MarketoPollPace {
  const { msUntilReset, callsPerIdlePoll: cost, floorMs, ceilingMs } = input
  const afterReset: MarketoPollPace = { delayMs: Math.max(floorMs, Math.ceil(msUntilReset) + AFTER_RESET_MARGIN_MS), pace: 'after-reset' }
  if (input.lastPass.kind === 'quota-spent') return afterReset
  const shareCalls = pollShareCalls(input)
  const polls = Math.floor(shareCalls / cost)
  if (polls < 1) return afterReset

  const evenMs = msUntilReset / polls
  const slowestMs = Math.max(ceilingMs, evenMs)
  const idleMs = Math.min(ceilingMs, Math.max(floorMs, evenMs))

  let wanted: number
  let pace: MarketoPollPaceKind
  let nextCost = cost
  if (input.lastPass.kind === 'changes' && shareCalls >= Math.max(1, input.lastPass.pages) * cost) {
    wanted = floorMs
    pace = 'fast'
    nextCost = Math.max(1, input.lastPass.pages) * cost
  } else {
    const previous = input.previousDelayMs
    wanted = previous === undefined ? idleMs : Math.min(idleMs, Math.max(floorMs, previous * 2))
    pace = wanted < idleMs ? 'slowing' : 'idle'
  }
  const affordableMs = earliestAffordableDelay(msUntilReset, shareCalls, nextCost, cost, slowestMs)
  const delayMs = Math.ceil(Math.max(wanted, affordableMs, floorMs))
  if (delayMs >= msUntilReset) return afterReset
  return { delayMs, pace: affordableMs > wanted ? 'budget' : pace }
}

/** The calls polling may still spend today: its share of what is left, and of the day net of its own polls. */
export function pollShareCalls (input: Pick<MarketoPollPaceInput, 'remainingCalls' | 'dailyBudget' | 'pollCallsToday'>): number {
  return Math.max(0, Math.min(MARKETO_POLL_SHARE * input.remainingCalls, MARKETO_POLL_SHARE * input.dailyBudget - input.pollCallsToday))
}

/**
 * The smallest delay for which the plan fits in the share: the next poll (`nextCost`), then
 * `ceil((msUntilReset − delay) / slowest)` polls at `cost` each.
 */
export function earliestAffordableDelay (msUntilReset: number, shareCalls: number, nextCost: number, cost: number, slowestMs: number): number {
  const pollsAfter = Math.floor((shareCalls - nextCost) / cost)
  if (pollsAfter < 0) return Number.POSITIVE_INFINITY
  return Math.max(0, msUntilReset - pollsAfter * slowestMs)
}

/** The calls the plan after a decision spends: the next poll, then one per `slowest` until the reset (for tests and logs). */
export function plannedCalls (input: MarketoPollPaceInput, decision: MarketoPollPace): number {
  if (decision.pace === 'after-reset') return 0
  const cost = input.callsPerIdlePoll
  const shareCalls = pollShareCalls(input)
  const slowestMs = Math.max(input.ceilingMs, input.msUntilReset / Math.floor(shareCalls / cost))
  const pages = input.lastPass.kind === 'changes' ? Math.max(1, input.lastPass.pages) : 1
  const nextCost = input.lastPass.kind === 'changes' && shareCalls >= pages * cost ? pages * cost : cost
  // The tolerance absorbs floating-point error in a ratio that is a whole number by construction.
  return nextCost + Math.ceil(Math.max(0, input.msUntilReset - decision.delayMs) / slowestMs - 1e-9) * cost
}
