import type { ApiFeature } from '../feature-module.ts'
import type { FlowStepIntake } from '../queue/flow-step-intake.ts'
import type { AssignToChoices } from './assign-to-choices.ts'
import type { SealedBox } from '../crypto/sealed-box.ts'
import flowStepRoutes from '../../routes/flow-step.ts'

export interface FlowStepApiDeps {
  readonly intake: FlowStepIntake
  readonly assignToChoices: Pick<AssignToChoices, 'list'>
  readonly callbackCredentialsBox: SealedBox
}

/** The flow step's side of the API: `/submitAsyncAction` and `/getPicklist` (routes/flow-step.ts). */
export function flowStepApiFeature (deps: FlowStepApiDeps): ApiFeature {
  return {
    name: 'flow-step',
    async register (app, { config }) {
      await app.register(flowStepRoutes, {
        apiKey: config.ssfs.apiKey,
        intake: deps.intake,
        callbackHosts: config.ssfs.callbackHosts,
        callbackCredentialsBox: deps.callbackCredentialsBox,
        assignToChoices: deps.assignToChoices
      })
    }
  }
}
