import { Type } from 'typebox'

export const Live = Type.Object({ status: Type.Literal('ok') })

export const DependencyStateSchema = Type.Object({
  name: Type.Union([Type.Literal('redis'), Type.Literal('dynamics-token'), Type.Literal('marketo-token'), Type.Literal('sync-schedulers')]),
  ok: Type.Boolean(),
  optional: Type.Optional(Type.Boolean({ description: 'The process does its essential work without it: a failure makes the status degraded, not unavailable.' })),
  code: Type.Optional(Type.String({ description: 'Why it failed: an error code (AZURE_AD_AUTH_FAILED, MARKETO_AUTH_FAILED, SCHEDULER_MISSING, …), never a message.' }))
})

/** `status` and `redis` as before (compose and load balancers read them); `checks` names every dependency checked. */
export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')], { description: 'unavailable (503): a required dependency failed; degraded (200): only an optional one did' }),
  redis: Type.Boolean(),
  checks: Type.Array(DependencyStateSchema)
})
