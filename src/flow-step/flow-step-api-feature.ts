import type { ApiFeature } from '../feature-module.ts'
import type { FlowStepIntake } from '../queue/flow-step-intake.ts'
import type { AssignToChoices } from './assign-to-choices.ts'
import type { SealedBox } from '../crypto/sealed-box.ts'
import flowStepRoutes from '../../routes/flow-step.ts'
import ssfsDefinitionRoutes from '../../routes/ssfs-definition.ts'

export interface FlowStepApiDeps {
  readonly intake: FlowStepIntake
  readonly assignToChoices: Pick<AssignToChoices, 'list'>
  readonly callbackCredentialsBox: SealedBox
}

/**
 * The flow step's side of the API: Marketo's Self-Service Flow Step interface — the definition it
 * installs the step from, `/status` and the icons (routes/ssfs-definition.ts), and the invocations and
 * picklists (routes/flow-step.ts).
 */
export function flowStepApiFeature (deps: FlowStepApiDeps): ApiFeature {
  return {
    name: 'flow-step',
    async register (app, { config, redis }) {
      await app.register(ssfsDefinitionRoutes, {
        publicUrl: config.http.publicUrl,
        providerName: config.ssfs.providerName,
        supportContact: config.ssfs.supportContact,
        apiKey: config.ssfs.apiKey,
        redis
      })
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
