import t from 'tap'
import { acceptedOnly, startProcessHarness, testLogsKeepSecrets } from '../helpers/process-harness.ts'

/**
 * Issue 11 §3.2: a poison job — one that kills whichever worker process runs it — is not handed
 * from one worker to the next for ever. BullMQ re-runs a job whose worker died; after the second
 * death (maxStalledCount 1) it fails the job for good, Marketo hears that its persons failed, and
 * the workers started afterwards live on and do the rest of the work.
 * The workers here run test/fixtures/poison-worker.ts: `src/worker.ts` that exits on the spot when
 * it looks up a person whose email starts with `poison.`.
 */

const h = await startProcessHarness(t, { workers: 1, workerEntry: 'test/fixtures/poison-worker.ts' })

t.test('a job that kills its worker every time is failed after two deaths and reported; the next worker survives', async (t) => {
  const poisoned = await h.runCampaign(h.createPersons(2, 'poison'), 'batch')
  t.equal(acceptedOnly(poisoned).length, 1, 'the poisoned invocation is accepted')

  const first = await h.workers[0]!.exited
  t.equal(first.code, 70, 'the poison job killed the first worker')
  // Its lock expires (WORKER_LOCK_DURATION_MS), the next worker's stalled check runs it again once.
  await h.startWorker()
  const second = await h.workers[1]!.exited
  t.equal(second.code, 70, 'and the second')

  const third = await h.startWorker()
  const report = await h.reconcile(poisoned, { timeoutMs: 30_000 })
  t.same(report.problems, [], 'every person of the poisoned invocation reaches the callback')
  t.equal(report.outcomes.failed, 2, 'reported failed')
  for (const failure of report.failures) t.match(failure, { errorCode: 'SYNC_ABANDONED', reason: /stalled more than allowable limit/ })

  const healthy = await h.runCampaign(h.createPersons(3, 'healthy'), 'batch')
  const after = await h.reconcile(healthy)
  t.same(after.problems, [])
  t.equal(after.outcomes.created, 3, 'the surviving worker goes on with other work')
  let exited = false
  void third.exited.then(() => { exited = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(exited, 'the third worker is alive')
})

testLogsKeepSecrets(t, h)
