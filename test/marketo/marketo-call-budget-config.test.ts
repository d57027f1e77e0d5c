import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { REQUIRED_ENVIRONMENT, configProblems } from '../helpers/valid-environment.ts'

/** The call budget's settings in the typed config: defaults below Marketo's limits, and no value above them. */

const valid = REQUIRED_ENVIRONMENT
const problemsOf = configProblems

t.test('unset, the budget is 10 % of 50,000 a day, 80 per 20 s and 8 at once', async (t) => {
  t.same(loadConfig(valid).marketo.callBudget, { dailyCalls: 5_000, callsPer20s: 80, concurrentCalls: 8 })
})

t.test('set, the operator\'s values are used', async (t) => {
  const config = loadConfig({ ...valid, MARKETO_DAILY_CALL_BUDGET: '20000', MARKETO_CALLS_PER_20S: '50', MARKETO_CONCURRENT_CALLS: '4' })
  t.same(config.marketo.callBudget, { dailyCalls: 20_000, callsPer20s: 50, concurrentCalls: 4 })
})

t.test('a value Marketo itself would refuse, or no number, stops start-up naming the variable', async (t) => {
  t.match(problemsOf({ ...valid, MARKETO_CALLS_PER_20S: '101' }), [/MARKETO_CALLS_PER_20S must be an integer from 1 to 100, got "101"/])
  t.match(problemsOf({ ...valid, MARKETO_CONCURRENT_CALLS: '11' }), [/MARKETO_CONCURRENT_CALLS must be an integer from 1 to 10/])
  t.match(problemsOf({ ...valid, MARKETO_DAILY_CALL_BUDGET: 'lots' }), [/MARKETO_DAILY_CALL_BUDGET must be an integer/])
  t.match(problemsOf({ ...valid, MARKETO_DAILY_CALL_BUDGET: '0' }), [/MARKETO_DAILY_CALL_BUDGET must be an integer from 1/])
})
