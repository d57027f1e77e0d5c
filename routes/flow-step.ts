import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { AcceptInvocationDeps } from '../src/flow-step/accept-invocation.ts'
import type { AssignToChoices } from '../src/flow-step/assign-to-choices.ts'
import { acceptInvocation } from '../src/flow-step/accept-invocation.ts'
import { PicklistTimeoutError, SYNC_AS_CHOICES } from '../src/flow-step/assign-to-choices.ts'
import { createApiKeyCheck } from '../src/http/api-key-check.ts'
import { DynamicsUnavailableError, UnknownPicklistError } from '../src/errors.ts'
import { ErrorResponse } from '../src/schemas/common.ts'
import { GetPicklistBody, PicklistObject, SubmitAsyncActionAccepted, SubmitAsyncActionBody } from '../src/schemas/flow-step.ts'
import { FLOW_ATTRIBUTE } from '../src/ssfs/service-definition.ts'

export interface FlowStepRoutesOptions extends AcceptInvocationDeps {
  readonly apiKey: string
  readonly assignToChoices: Pick<AssignToChoices, 'list'>
}

const security = [{ apiKey: [] }]

/** The authenticated half of the Self-Service Flow Step interface: invocations and picklists. */
const flowStepRoutes: FastifyPluginAsync<FlowStepRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.addHook('onRequest', createApiKeyCheck(options.apiKey))

  app.post('/submitAsyncAction', {
    schema: {
      tags: ['flow step'],
      summary: 'Marketo invokes the flow step for a batch of persons; answers 201 at once',
      security,
      body: SubmitAsyncActionBody,
      response: { 201: SubmitAsyncActionAccepted, 400: ErrorResponse, 401: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const accepted = await acceptInvocation(request.body, options)
    // debug: the access-log line is the one info line of a request (src/http/access-log.ts).
    request.log.debug({ invocationId: accepted.invocationId, persons: accepted.persons }, 'invocation accepted')
    void reply.code(201)
    return { accepted: true as const, ...accepted }
  })

  app.post('/getPicklist', {
    schema: {
      tags: ['flow step'],
      summary: 'Choices for Assign To (Dynamics users, cached) and Sync As',
      security,
      body: GetPicklistBody,
      response: { 200: PicklistObject, 400: ErrorResponse, 401: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request) => {
    if (request.body.name === FLOW_ATTRIBUTE.assignTo) {
      try {
        return { choices: await options.assignToChoices.list() }
      } catch (error) {
        if (error instanceof PicklistTimeoutError) throw error
        throw new DynamicsUnavailableError({ cause: error })
      }
    }
    if (request.body.name === FLOW_ATTRIBUTE.syncAs) return { choices: SYNC_AS_CHOICES }
    throw new UnknownPicklistError(request.body.name)
  })
}

export default flowStepRoutes
