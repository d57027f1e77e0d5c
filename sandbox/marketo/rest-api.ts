import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import type { ActivityLog } from './activity-log.ts'
import type { BulkLeadImports } from './bulk-lead-import.ts'
import type { CustomActivityTypes } from './custom-activity-types.ts'
import { BodyTooLargeError, headerValue, mediaTypeOf, readBody } from './http-io.ts'
import type { AccessTokenIssuer } from './identity.ts'
import type { LeadFieldCatalog } from './lead-fields.ts'
import type { PersonStore } from './person-store.ts'
import { getActivityTypes, getLeadActivities, getLeadChanges, getPagingToken } from './rest-activities.ts'
import { addCustomActivities, approveCustomActivityType, createCustomActivityType, createCustomActivityTypeAttributes, describeCustomActivityType, getCustomActivityTypes } from './rest-custom-activities.ts'
import { MarketoRestError, newRequestId, restErrors, sendRestError, sendRestSuccess, type RestSuccess } from './rest-envelope.ts'
import type { RestFaults } from './rest-faults.ts'
import type { RestCallLimits } from './rest-limits.ts'
import { describeLeads, describeLeads2, getLeadById, getLeadsByFilterType, syncLeads } from './rest-leads.ts'

/**
 * The `/rest` surface: size limits, the `_method=GET` tunnel, bearer authentication, injected
 * faults, the instance's call limits (606/607/615), then dispatch to the leads/activities handlers.
 * Token errors come before the limits: 601/602 calls are not counted (reference §2.3 asterisks).
 */

export interface RestApiDependencies {
  readonly issuer: AccessTokenIssuer
  readonly persons: PersonStore
  readonly fields: LeadFieldCatalog
  readonly activities: ActivityLog
  readonly customActivityTypes: CustomActivityTypes
  readonly bulkImports: BulkLeadImports
  readonly faults: RestFaults
  readonly limits: RestCallLimits
  readonly now: () => Date
}

/** URI > 8 KB → 414, body > 1 MB → 413, both HTTP-level (reference §2.2, §2.3). */
const MAX_URI_LENGTH = 8 * 1024
const MAX_BODY_BYTES = 1024 * 1024
/** Bulk import files may reach 10 MB ("Bulk lead import"; 413 past it, §2.2). */
const MAX_BULK_BODY_BYTES = 10 * 1024 * 1024

/** The failures and warnings files of a bulk import: the file itself, not an envelope. */
interface RestFile {
  readonly file: string
}

interface RestCall {
  /** After the `_method=GET` tunnel is applied. */
  readonly method: string
  readonly path: string
  /** Query parameters, plus the form body when a POST tunnels a GET. */
  readonly params: URLSearchParams
  readonly mediaType: string
  /** With its parameters (the multipart boundary). */
  readonly contentType: string
  readonly body: string
  /** Chosen up front: writes record it on their Change Data Value activities ("Request Id"). */
  readonly requestId: string
}

export async function handleRestRequest (req: IncomingMessage, res: ServerResponse, url: URL, deps: RestApiDependencies): Promise<void> {
  if ((req.url ?? '').length > MAX_URI_LENGTH) {
    res.writeHead(414, { 'Content-Type': 'text/plain' }).end('Request-URI Too Long')
    return
  }
  let body: string
  try {
    body = await readBody(req, url.pathname.startsWith('/bulk/') ? MAX_BULK_BODY_BYTES : MAX_BODY_BYTES)
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) throw error
    res.writeHead(413, { 'Content-Type': 'text/plain' }).end('Request Entity Too Large')
    return
  }
  const call = toRestCall(req, url, body, newRequestId(deps.now()))
  let release: (() => void) | undefined
  try {
    authenticate(req, call, deps.issuer)
    const injected = deps.faults.takeQueuedError()
    if (injected !== undefined) throw injected
    release = deps.limits.admit()
    // The emulated latency is spent holding a concurrency slot, as a slow Marketo answer does.
    await emulatedLatency(deps.faults)
    const answer = route(call, deps)
    if ('file' in answer) {
      // Adobe serves these as delimited text (inferred content type).
      res.writeHead(200, { 'Content-Type': 'text/csv;charset=UTF-8' }).end(answer.file)
    } else {
      sendRestSuccess(res, call.requestId, answer)
    }
  } catch (error) {
    if (!(error instanceof MarketoRestError)) throw error
    // Refusals are as slow as answers; only admitted calls hold a slot while waiting.
    if (release === undefined) await emulatedLatency(deps.faults)
    sendRestError(res, call.requestId, error)
  } finally {
    release?.()
  }
}

async function emulatedLatency (faults: RestFaults): Promise<void> {
  if (faults.latencyMs > 0) await delay(faults.latencyMs)
}

/**
 * node-marketo-rest adds `_method=GET` to GETs (ignored here), and the documented 414 workaround
 * is a POST carrying `_method=GET` and the query as a form body (reference §2.2, §3.3).
 */
function toRestCall (req: IncomingMessage, url: URL, body: string, requestId: string): RestCall {
  const params = new URLSearchParams(url.search)
  const mediaType = mediaTypeOf(req)
  let method = req.method ?? 'GET'
  if (method === 'POST' && mediaType === 'application/x-www-form-urlencoded') {
    for (const [name, value] of new URLSearchParams(body)) params.append(name, value)
  }
  if (method === 'POST' && params.get('_method')?.toUpperCase() === 'GET') method = 'GET'
  params.delete('_method')
  return { method, path: url.pathname, params, mediaType, contentType: headerValue(req, 'content-type') ?? '', body, requestId }
}

/** Bearer header; the `access_token` query parameter is still accepted until its removal date (§2.1). */
function authenticate (req: IncomingMessage, call: RestCall, issuer: AccessTokenIssuer): void {
  const authorization = headerValue(req, 'authorization') ?? ''
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization)?.[1]?.trim()
  // Bulk endpoints take the header only: the query parameter "is no longer supported" there ("Bulk lead import").
  const accessToken = bearer ?? (call.path.startsWith('/bulk/') ? '' : call.params.get('access_token') ?? '')
  call.params.delete('access_token')
  if (accessToken === '') throw restErrors.tokenMissing()
  const check = issuer.check(accessToken)
  if (check === 'invalid') throw restErrors.tokenInvalid()
  if (check === 'expired') throw restErrors.tokenExpired()
}

const LEAD_BY_ID = /^\/rest\/v1\/lead\/(\d+)\.json$/
const APPROVE_ACTIVITY_TYPE = /^\/rest\/v1\/activities\/external\/type\/([^/]+)\/approve\.json$/
const DESCRIBE_ACTIVITY_TYPE = /^\/rest\/v1\/activities\/external\/type\/([^/]+)\/describe\.json$/
const CREATE_ACTIVITY_TYPE_ATTRIBUTES = /^\/rest\/v1\/activities\/external\/type\/([^/]+)\/attributes\/create\.json$/

const BULK_IMPORT_BATCH = /^\/bulk\/v1\/leads\/batch\/(\d+)(\/failures|\/warnings)?\.json$/

function route (call: RestCall, deps: RestApiDependencies): RestSuccess | RestFile {
  const batch = BULK_IMPORT_BATCH.exec(call.path)
  if (batch !== null) {
    if (call.method !== 'GET') throw restErrors.methodNotSupported(call.method)
    const batchId = Number(batch[1])
    if (batch[2] === '/failures') return { file: deps.bulkImports.failuresFile(batchId) }
    if (batch[2] === '/warnings') return { file: deps.bulkImports.warningsFile(batchId) }
    return deps.bulkImports.status(batchId)
  }
  if (call.path === '/bulk/v1/leads.json') return onlyPost(call, () => deps.bulkImports.submit(call.contentType, call.body, call.params, call.requestId))
  const leadById = LEAD_BY_ID.exec(call.path)
  if (leadById !== null) return onlyGet(call, () => getLeadById(Number(leadById[1]), call.params, deps))
  const approveType = APPROVE_ACTIVITY_TYPE.exec(call.path)
  if (approveType !== null) return onlyPost(call, () => approveCustomActivityType(decodeURIComponent(approveType[1]!), deps))
  const describeType = DESCRIBE_ACTIVITY_TYPE.exec(call.path)
  if (describeType !== null) return onlyGet(call, () => describeCustomActivityType(decodeURIComponent(describeType[1]!), call.params, deps))
  const createAttributes = CREATE_ACTIVITY_TYPE_ATTRIBUTES.exec(call.path)
  if (createAttributes !== null) return onlyPost(call, () => createCustomActivityTypeAttributes(decodeURIComponent(createAttributes[1]!), parseJsonBody(call), deps))
  switch (call.path) {
    case '/rest/v1/leads.json':
      if (call.method === 'GET') return getLeadsByFilterType(call.params, deps)
      if (call.method === 'POST') return syncLeads(parseJsonBody(call), call.requestId, deps)
      throw restErrors.methodNotSupported(call.method)
    case '/rest/v1/leads/describe.json':
      return onlyGet(call, () => describeLeads(deps))
    case '/rest/v1/leads/describe2.json':
      return onlyGet(call, () => describeLeads2(deps))
    case '/rest/v1/activities/types.json':
      return onlyGet(call, () => getActivityTypes(deps.activities))
    case '/rest/v1/activities/pagingtoken.json':
      return onlyGet(call, () => getPagingToken(call.params))
    case '/rest/v1/activities.json':
      return onlyGet(call, () => getLeadActivities(call.params, deps.activities))
    case '/rest/v1/activities/leadchanges.json':
      return onlyGet(call, () => getLeadChanges(call.params, deps.activities))
    case '/rest/v1/activities/external/types.json':
      return onlyGet(call, () => getCustomActivityTypes(deps))
    case '/rest/v1/activities/external/type.json':
      return onlyPost(call, () => createCustomActivityType(parseJsonBody(call), deps))
    case '/rest/v1/activities/external.json':
      return onlyPost(call, () => addCustomActivities(parseJsonBody(call), deps))
    default:
      throw restErrors.notFound()
  }
}

function onlyGet (call: RestCall, handler: () => RestSuccess): RestSuccess {
  if (call.method !== 'GET') throw restErrors.methodNotSupported(call.method)
  return handler()
}

function onlyPost (call: RestCall, handler: () => RestSuccess): RestSuccess {
  if (call.method !== 'POST') throw restErrors.methodNotSupported(call.method)
  return handler()
}

/** Sync Leads needs `Content-Type: application/json` (612) and valid JSON (609) (reference §2.3). */
function parseJsonBody (call: RestCall): unknown {
  if (call.mediaType !== 'application/json') throw restErrors.invalidContentType()
  try {
    return JSON.parse(call.body)
  } catch {
    throw restErrors.invalidJson()
  }
}
