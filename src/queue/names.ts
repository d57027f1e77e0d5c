/**
 * Queue names are part of the deployment contract: API, workers and future schedulers of other
 * versions meet on them in Redis. Change one only with a migration.
 */
export const QUEUE = {
  /** One job per flow-step invocation: look up / create each person in Dynamics. */
  flowStep: 'flow-step',
  /** One job per invocation: report the outcomes to Marketo's callback URL, with retries. */
  flowStepCallback: 'flow-step-callback',
  /** Background sync: one job per Dynamics change pass of one table, added by a job scheduler per table. */
  syncDynamicsChanges: 'sync-dynamics-changes',
  /** Background sync: one job per Marketo lead-change pass, added by one job scheduler. */
  syncMarketoChanges: 'sync-marketo-changes'
} as const
export type QueueName = typeof QUEUE[keyof typeof QUEUE]

/** The name every `flow-step` job carries (jobs/sync-person-batch.ts processes it). */
export const FLOW_STEP_JOB_NAME = 'sync-person-batch'

/** The name every `flow-step-callback` job carries (jobs/send-flow-callback.ts processes it). */
export const FLOW_CALLBACK_JOB_NAME = 'send-flow-callback'

/** BullMQ: a lower number runs first. Trigger campaigns are real time; batch runs can wait. */
export const PRIORITY = { triggerCampaign: 1, batchCampaign: 10 } as const

/** The name every `sync-dynamics-changes` job carries (src/background-sync/dynamics-change-job.ts processes it). */
export const DYNAMICS_CHANGE_PASS_JOB_NAME = 'dynamics-change-pass'

/** The job scheduler of one table's Dynamics change passes: one per table, whatever the number of workers. */
export function dynamicsChangeSchedulerId (table: string): string {
  return `dynamics-changes:${table}`
}

/** The name every `sync-marketo-changes` job carries (src/background-sync/marketo-change-scheduler.ts processes it). */
export const MARKETO_CHANGE_PASS_JOB_NAME = 'marketo-change-pass'

/** The one job scheduler of Marketo's lead-change passes: one feed for leads and contacts, whatever the number of workers. */
export const MARKETO_CHANGE_SCHEDULER_ID = 'marketo-changes:person'
