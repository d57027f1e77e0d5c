import { marketoFieldOf, type InstalledService } from './installed-service.ts'
import type { CampaignKind } from './invocation-ledger.ts'
import type { Person } from './person-store.ts'

/**
 * The body Marketo POSTs to `/submitAsyncAction` (schema `async`, reference §1.6): one-time
 * `token`, `batchid`, `apiCallBackKey`, `campaignId`, `callbackUrl`, `context`, `objectData[]`.
 * What goes into `context` and each `objectData` item follows the service definition's
 * `invocationPayloadDef` (§1.3): contexts only when their flag is true, mapped fields only,
 * flow-step values only for declared flow attributes.
 */

export interface InvocationPayload {
  readonly token: string
  readonly batchid: string
  readonly apiCallBackKey: string
  readonly campaignId: number
  readonly callbackUrl: string
  readonly context: InvocationContext
  readonly objectData: readonly InvocationObjectData[]
}

export interface InvocationContext {
  readonly subscription: { readonly munchkinId: string, readonly prefix: string }
  readonly admin: Readonly<Record<string, unknown>>
  readonly campaign?: Readonly<Record<string, unknown>>
  readonly program?: Readonly<Record<string, unknown>>
}

export interface InvocationObjectData {
  readonly objectType: 'lead'
  readonly objectContext: Readonly<Record<string, unknown>> & { readonly id: number }
  readonly flowStepContext: Readonly<Record<string, unknown>>
  readonly triggeringContext?: { readonly name: string, readonly triggerName: string }
  readonly programMemberContext?: Readonly<Record<string, unknown>>
}

export interface InvocationPayloadInput {
  readonly token: string
  readonly batchid: string
  readonly apiCallBackKey: string
  readonly callbackUrl: string
  readonly munchkinId: string
  readonly service: InstalledService
  readonly campaign: { readonly id: number, readonly name: string, readonly kind: CampaignKind }
  readonly program: { readonly id: number, readonly name: string }
  readonly persons: readonly Person[]
  readonly flowStepContext: Readonly<Record<string, unknown>>
  readonly triggeringContext: { readonly name: string, readonly triggerName: string }
  readonly now: Date
}

export function buildInvocationPayload (input: InvocationPayloadInput): InvocationPayload {
  const invocationDef = input.service.definition.invocationPayloadDef
  const campaign = input.campaign
  const context: InvocationContext = {
    // `subscription` is required by the schema whatever `subscriptionContext` says (§1.6).
    subscription: { munchkinId: input.munchkinId, prefix: subscriptionPrefixOf(input.munchkinId) },
    admin: declaredGlobalValues(input.service),
    ...(invocationDef.campaignContext === true
      ? {
          campaign: {
            id: campaign.id,
            name: campaign.name,
            description: '',
            type: campaign.kind,
            status: 'Active',
            flowId: campaign.id,
            folderId: input.program.id,
            folderName: input.program.name,
            parentProgramId: input.program.id,
            smartListId: campaign.id,
            workspaceId: 1,
            workspaceName: 'Default',
            commLimitEnabled: false
          }
        }
      : {}),
    ...(invocationDef.programContext === true
      ? {
          program: {
            id: input.program.id,
            name: input.program.name,
            description: '',
            type: 'Default',
            status: '',
            channelName: 'Operational',
            createdAt: input.now.toISOString(),
            updatedAt: input.now.toISOString()
          }
        }
      : {})
  }
  const flowStepContext = declaredFlowStepValues(input.service, input.flowStepContext)
  return {
    token: input.token,
    batchid: input.batchid,
    apiCallBackKey: input.apiCallBackKey,
    campaignId: campaign.id,
    callbackUrl: input.callbackUrl,
    context,
    objectData: input.persons.map((person) => ({
      objectType: 'lead' as const,
      objectContext: objectContextOf(person, input.service),
      flowStepContext,
      // "No data is sent if the flow step was called in a batch campaign" [FSIO] (§1.6).
      ...(campaign.kind === 'trigger' && invocationDef.triggerContext === true ? { triggeringContext: input.triggeringContext } : {}),
      // The emulator has no program membership: members' context is empty (allowed by the schema, §1.6).
      ...(invocationDef.programMemberContext === true ? { programMemberContext: {} } : {})
    }))
  }
}

/**
 * `id` is always present [WK][WFP]; each mapped field is keyed by its service attribute, read
 * from the Marketo field the mapping suggests. With `userDrivenMapping` the service sees Marketo
 * REST names instead (third-party, §1.3). Empty fields are sent as null (inferred: undocumented).
 */
function objectContextOf (person: Person, service: InstalledService): InvocationObjectData['objectContext'] {
  const invocationDef = service.definition.invocationPayloadDef
  const context: Record<string, unknown> = { id: person.id }
  for (const mapping of invocationDef.fields ?? []) {
    const marketoField = marketoFieldOf(mapping)
    if (marketoField === 'id') continue
    const key = invocationDef.userDrivenMapping === true ? marketoField : mapping.serviceAttribute
    context[key] = person[marketoField] ?? null
  }
  return context as InvocationObjectData['objectContext']
}

/** "Flow attributes … are sent per-lead in the flowStepContext object" (§1.3): only declared ones exist in Marketo's UI. */
function declaredFlowStepValues (service: InstalledService, values: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const declared = service.definition.invocationPayloadDef.flowAttributes ?? []
  const context: Record<string, unknown> = {}
  for (const attribute of declared) {
    if (values[attribute.apiName] !== undefined) context[attribute.apiName] = values[attribute.apiName]
  }
  return context
}

/** Global attributes "included in every invocation if set" (§1.3); `context.admin` is where they land (inferred, §1.6). */
function declaredGlobalValues (service: InstalledService): Record<string, unknown> {
  const admin: Record<string, unknown> = {}
  for (const attribute of service.definition.invocationPayloadDef.globalAttributes ?? []) {
    const value = service.globalAttributeValues[attribute.apiName]
    if (value !== undefined) admin[attribute.apiName] = value
  }
  return admin
}

/** Real prefixes are customer-chosen names (e.g. 'marketob2', §1.6); derive a stable one. */
function subscriptionPrefixOf (munchkinId: string): string {
  return `emu${munchkinId.replace(/[^A-Za-z0-9]/g, '').toLowerCase()}`
}
