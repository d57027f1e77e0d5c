import type { ActivityLog } from './activity-log.ts'
import { ServiceInstallError } from './errors.ts'
import { asObject, marketoFieldOf, parseServiceDefinition, type ApiKeyPlacement, type InstalledService, type ServiceDefinition } from './installed-service.ts'
import type { LeadFieldCatalog } from './lead-fields.ts'

/**
 * Admin → Service Providers → Add New Service, as the emulator performs it (reference §1.1,
 * §1.9 items 1–2): read the OpenAPI document, verify the credentials against `/status`, read
 * `/getServiceDefinition`, then register the service's activity type and incoming fields.
 */

export interface InstallServiceOptions {
  /** URL of the service's OpenAPI document (JSON), usually ending `/openapi.json`. */
  readonly openapiUrl: string
  readonly apiKey: string
  /** Global configuration values the admin would enter at install time. */
  readonly globalAttributes?: Readonly<Record<string, unknown>>
}

export interface InstallDependencies {
  readonly fields: LeadFieldCatalog
  readonly activities: ActivityLog
  readonly requestTimeoutMs: number
}

const DEFAULT_API_KEY_PLACEMENT: ApiKeyPlacement = { name: 'x-api-key', in: 'header' }
const RESERVED_ACTIVITY_ATTRIBUTES = [
  { name: 'success', dataType: 'boolean' },
  { name: 'reason', dataType: 'string' },
  { name: 'errorCode', dataType: 'string' }
]

export async function installService (options: InstallServiceOptions, deps: InstallDependencies): Promise<InstalledService> {
  const openapi = await fetchJson(options.openapiUrl, {}, deps.requestTimeoutMs, 'OPENAPI_UNREADABLE')
  const document = asObject(openapi)
  if (document === undefined) throw new ServiceInstallError('OPENAPI_UNREADABLE', `${options.openapiUrl} is not a JSON object`)
  const baseUrl = serviceBaseUrl(document, options.openapiUrl)
  const apiKeyPlacement = apiKeyPlacementOf(document)
  const authenticated = (path: string): { url: string, headers: Record<string, string> } => withApiKey(`${baseUrl}${path}`, apiKeyPlacement, options.apiKey)

  // "On save Marketo calls the service's status endpoint to verify the credentials" (§1.1 step 2).
  const status = authenticated('/status')
  let statusResponse: Response
  try {
    statusResponse = await fetch(status.url, { headers: status.headers, signal: AbortSignal.timeout(deps.requestTimeoutMs) })
    await statusResponse.arrayBuffer()
  } catch (error) {
    throw new ServiceInstallError('STATUS_CHECK_FAILED', `GET ${status.url} failed: ${(error as Error).message}`, { cause: error })
  }
  if (!statusResponse.ok) throw new ServiceInstallError('STATUS_CHECK_FAILED', `GET ${status.url} answered ${statusResponse.status}`)

  const definitionRequest = authenticated('/getServiceDefinition')
  const definition = parseServiceDefinition(await fetchJson(definitionRequest.url, definitionRequest.headers, deps.requestTimeoutMs, 'SERVICE_DEFINITION_INVALID'))
  const displayName = definition.i18n.en_US?.name ?? definition.apiName
  registerIncomingFields(definition, deps.fields)
  const activityType = deps.activities.registerType({
    name: displayName,
    description: definition.i18n.en_US?.description ?? displayName,
    primaryAttribute: primaryAttributeOf(definition),
    attributes: [
      ...RESERVED_ACTIVITY_ATTRIBUTES,
      ...(definition.callbackPayloadDef.attributes ?? []).map((attribute) => ({ name: attribute.apiName, dataType: attribute.dataType ?? 'string' })),
      ...(definition.invocationPayloadDef.flowAttributes ?? [])
        .filter((attribute) => attribute.apiName !== definition.primaryAttribute)
        .map((attribute) => ({ name: attribute.apiName, dataType: attribute.dataType ?? 'string' }))
    ]
  })
  return {
    baseUrl,
    apiKey: options.apiKey,
    apiKeyPlacement,
    definition,
    activityTypeId: activityType.id,
    displayName,
    globalAttributeValues: { ...options.globalAttributes }
  }
}

/** `servers[0].url` (relative URLs resolve against the document), else the document's directory (§1.2). */
function serviceBaseUrl (document: Record<string, unknown>, openapiUrl: string): string {
  const servers = document.servers
  const first = Array.isArray(servers) ? asObject(servers[0]) : undefined
  const base = typeof first?.url === 'string' && first.url !== '' ? new URL(first.url, openapiUrl) : new URL('.', openapiUrl)
  return base.href.replace(/\/+$/, '')
}

/** "Marketo will only use the first scheme defined in '#/security'" (§1.2); only apiKey is emulated. */
function apiKeyPlacementOf (document: Record<string, unknown>): ApiKeyPlacement {
  const schemes = asObject(asObject(document.components)?.securitySchemes) ?? {}
  const security = Array.isArray(document.security) ? document.security : []
  const firstName = Object.keys(asObject(security[0]) ?? {})[0]
  const candidates = firstName === undefined ? Object.values(schemes) : [schemes[firstName]]
  for (const candidate of candidates) {
    const scheme = asObject(candidate)
    if (scheme?.type === 'apiKey' && typeof scheme.name === 'string' && (scheme.in === 'header' || scheme.in === 'query')) {
      return { name: scheme.name, in: scheme.in }
    }
  }
  return DEFAULT_API_KEY_PLACEMENT
}

export function withApiKey (url: string, placement: ApiKeyPlacement, apiKey: string): { url: string, headers: Record<string, string> } {
  if (placement.in === 'header') return { url, headers: { [placement.name]: apiKey } }
  const withQuery = new URL(url)
  withQuery.searchParams.set(placement.name, apiKey)
  return { url: withQuery.href, headers: {} }
}

/** Incoming fields become person fields so the callback can write them and Describe lists them. */
function registerIncomingFields (definition: ServiceDefinition, fields: LeadFieldCatalog): void {
  for (const mapping of definition.callbackPayloadDef.fields ?? []) {
    fields.ensure(marketoFieldOf(mapping), mapping.dataType ?? 'string')
  }
}

function primaryAttributeOf (definition: ServiceDefinition): { name: string, dataType: string } {
  const attribute = (definition.invocationPayloadDef.flowAttributes ?? []).find((candidate) => candidate.apiName === definition.primaryAttribute)
  return { name: definition.primaryAttribute, dataType: attribute?.dataType ?? 'string' }
}

async function fetchJson (url: string, headers: Record<string, string>, timeoutMs: number, reason: 'OPENAPI_UNREADABLE' | 'SERVICE_DEFINITION_INVALID'): Promise<unknown> {
  let response: Response
  let text: string
  try {
    response = await fetch(url, { headers: { Accept: 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs) })
    text = await response.text()
  } catch (error) {
    throw new ServiceInstallError(reason, `GET ${url} failed: ${(error as Error).message}`, { cause: error })
  }
  if (!response.ok) throw new ServiceInstallError(reason, `GET ${url} answered ${response.status}`)
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new ServiceInstallError(reason, `GET ${url} did not return JSON`, { cause: error })
  }
}
