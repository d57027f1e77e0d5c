import { ServiceInstallError } from './errors.ts'

/**
 * What the emulator keeps of an installed SSFS service: where and how to call it and the parts of
 * its service definition (reference §1.3) that drive invocations and callbacks. Parsed loosely —
 * the emulator is Marketo, not the SPI schema validator — but the keys Marketo needs are checked.
 */

export interface ServiceFieldMapping {
  readonly serviceAttribute: string
  readonly suggestedMarketoAttribute?: string
  readonly dataType?: string
  readonly required?: boolean
}

export interface ServiceAttribute {
  readonly apiName: string
  readonly dataType?: string
  readonly i18n?: { readonly en_US?: { readonly name?: string, readonly description?: string } }
}

export interface ServiceDefinition {
  readonly apiName: string
  readonly i18n: { readonly en_US?: { readonly name?: string, readonly filterName?: string, readonly triggerName?: string, readonly description?: string } }
  readonly primaryAttribute: string
  readonly invocationPayloadDef: {
    readonly fields?: readonly ServiceFieldMapping[]
    readonly flowAttributes?: readonly ServiceAttribute[]
    readonly globalAttributes?: readonly ServiceAttribute[]
    readonly userDrivenMapping?: boolean
    readonly programContext?: boolean
    readonly campaignContext?: boolean
    readonly triggerContext?: boolean
    readonly programMemberContext?: boolean
    readonly subscriptionContext?: boolean
  }
  readonly callbackPayloadDef: {
    readonly fields?: readonly ServiceFieldMapping[]
    readonly attributes?: readonly ServiceAttribute[]
    readonly userDrivenMapping?: boolean
  }
}

/** How Marketo authenticates to the service: the OpenAPI doc's first apiKey scheme (reference §1.2). */
export interface ApiKeyPlacement {
  readonly name: string
  readonly in: 'header' | 'query'
}

export interface InstalledService {
  /** Base the SSFS paths hang off: `servers[0].url`, else what precedes the OpenAPI file (§1.2). */
  readonly baseUrl: string
  readonly apiKey: string
  readonly apiKeyPlacement: ApiKeyPlacement
  readonly definition: ServiceDefinition
  /** Id of the activity type the install registered (reference §1.8; numbering is ours, §4 q5). */
  readonly activityTypeId: number
  /** Name shown for the service and its activity: `i18n.en_US.name`, else `apiName`. */
  readonly displayName: string
  /** Values of global attributes as the admin configured them; sent as `context.admin` (inferred, §1.6). */
  readonly globalAttributeValues: Readonly<Record<string, unknown>>
}

export function parseServiceDefinition (value: unknown): ServiceDefinition {
  const problems: string[] = []
  const definition = asObject(value)
  if (definition === undefined) throw invalid(['the body is not a JSON object'])
  for (const key of ['apiName', 'primaryAttribute'] as const) {
    if (typeof definition[key] !== 'string' || definition[key] === '') problems.push(`${key} must be a non-empty string`)
  }
  for (const key of ['i18n', 'invocationPayloadDef', 'callbackPayloadDef'] as const) {
    if (asObject(definition[key]) === undefined) problems.push(`${key} must be an object`)
  }
  const invocation = asObject(definition.invocationPayloadDef) ?? {}
  const callback = asObject(definition.callbackPayloadDef) ?? {}
  checkList(invocation.fields, 'invocationPayloadDef.fields', 'serviceAttribute', problems)
  checkList(invocation.flowAttributes, 'invocationPayloadDef.flowAttributes', 'apiName', problems)
  checkList(invocation.globalAttributes, 'invocationPayloadDef.globalAttributes', 'apiName', problems)
  checkList(callback.fields, 'callbackPayloadDef.fields', 'serviceAttribute', problems)
  checkList(callback.attributes, 'callbackPayloadDef.attributes', 'apiName', problems)
  // SPI rules the installer enforces (reference §1.3).
  const reserved = ['success', 'reason', 'errorCode']
  if (reserved.includes(String(definition.apiName))) problems.push(`apiName "${String(definition.apiName)}" is reserved`)
  const callbackAttributeNames = listOf(callback.attributes).map((attribute) => attribute.apiName)
  if (callbackAttributeNames.includes(String(definition.primaryAttribute))) problems.push('primaryAttribute must not be a callback attribute')
  const flowAttributeNames = listOf(invocation.flowAttributes).map((attribute) => attribute.apiName)
  const overlap = flowAttributeNames.filter((name) => callbackAttributeNames.includes(name))
  if (overlap.length > 0) problems.push(`flow parameters and activity attributes overlap: ${overlap.join(', ')}`)
  if (problems.length > 0) throw invalid(problems)
  return definition as unknown as ServiceDefinition
}

function invalid (problems: readonly string[]): ServiceInstallError {
  return new ServiceInstallError('SERVICE_DEFINITION_INVALID', `invalid service definition: ${problems.join('; ')}`)
}

function checkList (value: unknown, path: string, key: string, problems: string[]): void {
  if (value === undefined) return
  if (!Array.isArray(value)) {
    problems.push(`${path} must be an array`)
    return
  }
  value.forEach((item, index) => {
    const entry = asObject(item)
    if (entry === undefined || typeof entry[key] !== 'string' || entry[key] === '') problems.push(`${path}[${index}].${key} must be a non-empty string`)
  })
}

function listOf (value: unknown): Array<{ apiName: string }> {
  return Array.isArray(value) ? value.filter((item): item is { apiName: string } => typeof asObject(item)?.apiName === 'string') : []
}

export function asObject (value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
}

/** The Marketo person field a mapping reads from or writes to (reference §1.3 `suggestedMarketoAttribute`). */
export function marketoFieldOf (mapping: ServiceFieldMapping): string {
  return mapping.suggestedMarketoAttribute ?? mapping.serviceAttribute
}
