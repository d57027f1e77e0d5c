import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { assertStateStatusPair, includesFormattedValues, withFormattedValues } from './option-sets.ts'
import { encodeSkipToken, parseCollectionQuery, projectRow, runCollectionQuery, MAX_PAGE_SIZE } from './collection-query.ts'
import {
  DataverseError,
  invalidPayload,
  queryError,
  recordAlreadyExists,
  recordNotFound,
  resourceNotFound,
  versionMismatch
} from './dataverse-error.ts'
import { findEntityDefinition, type EntityDefinition } from './entity-model.ts'
import {
  DEFAULT_DELTA_TOKEN_LIFETIME_MS,
  decodeDeltaToken,
  decodeTrackedSkipToken,
  encodeDeltaToken,
  encodeTrackedSkipToken,
  expiredDeltaToken,
  firstPosition,
  isDeltaTokenValid,
  isTrackedSkipToken,
  readTrackedPage,
  refusedTrackingOption
} from './change-tracking.ts'
import { FaultInjector, FaultSettingsError, type DataverseFaults } from './faults.ts'
import { readRecordPayload } from './record-payload.ts'
import { answerAttributeMetadata, isAttributeMetadataPath } from './attribute-metadata.ts'
import { RecordStore, UnknownEntitySetError, type DataverseRecord, type DataverseRecordStore } from './record-store.ts'
import { BULK_MESSAGE_TABLES, planUpdateMultiple } from './update-multiple.ts'
import { executeBatch } from './batch.ts'
import { BatchPartExchange } from './batch-part-exchange.ts'
import { qualifyLead, readQualifyLeadParameters } from './qualify-lead.ts'

/**
 * A local Dataverse Web API (`/api/data/v9.2/`) over plain HTTP, good enough for unmodified
 * dynamics-web-api 2.5 and the product's Dynamics client (reference doc §9; checklist §10):
 * create / retrieve / update / upsert / delete on `leads`, `contacts`, `accounts`, `systemusers`,
 * collection queries with `$filter/$select/$orderby/$top/$count` and `odata.maxpagesize` paging,
 * weak etags, Dataverse-shaped validation errors, `WhoAmI`, change tracking on leads and contacts
 * (change-tracking.ts), `_createdby_value`/`_modifiedby_value` set to the calling user (or the one
 * impersonated with `MSCRMCallerID`), the `UpdateMultiple` bulk message on leads and contacts
 * (update-multiple.ts), fault injection (also over HTTP under `/_emulator/`, for the sandbox
 * launcher and tests in other processes), `$batch` with change sets (batch.ts), the `QualifyLead` action
 * (qualify-lead.ts). Not implemented: alternate keys,
 * `CreateMultiple`/`UpsertMultiple`, `$expand`.
 */

export interface DataverseEmulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  readonly host?: string
  /** 0 (default) lets the OS choose. */
  readonly port?: number
  /** Decides whether a Bearer token is acceptable (401 otherwise). Omitted: any Bearer token is. */
  readonly verifyAccessToken?: (token: string) => boolean
  /**
   * Columns that must be present and non-empty on create and may not be emptied on update. Dataverse
   * itself enforces only SystemRequired columns (§6); an org can make more required via plug-ins.
   */
  readonly requiredFields?: { readonly leads?: readonly string[], readonly contacts?: readonly string[] }
  readonly latencyMs?: number
  readonly seed?: {
    readonly systemusers?: readonly DataverseRecord[]
    readonly leads?: readonly DataverseRecord[]
    readonly contacts?: readonly DataverseRecord[]
    readonly accounts?: readonly DataverseRecord[]
  }
  /** The systemuser the caller is (WhoAmI) and default owner of new rows; random when omitted. */
  readonly defaultUserId?: string
  readonly changeTracking?: {
    /** Tables whose change tracking is off (`Prefer: odata.track-changes` is then ignored). */
    readonly disabledFor?: ReadonlyArray<'leads' | 'contacts'>
    /** How long a delta token stays good; Dataverse's default is 7 days (reference doc §2). */
    readonly tokenLifetimeMs?: number
  }
}

export interface DataverseChangeTracking {
  /** Every delta token issued so far answers "expired" (0x80044352) from now on; new reads get new ones. */
  expireTokens (): void
  /**
   * Turns a table's change tracking on or off, as `disabledFor` does at start. Dataverse can only
   * turn it on (EntityMetadata.ChangeTrackingEnabled cannot be disabled once on, reference doc §2);
   * off is for a test to start with an untracked table.
   */
  setTracked (entitySet: 'leads' | 'contacts', tracked: boolean): void
}

export interface WebApiRequestFilter {
  readonly method?: string
  readonly entitySet?: string
}

export interface DataverseEmulator {
  /** `http://127.0.0.1:PORT`: the serverUrl for dynamics-web-api and DYNAMICS_URL. */
  readonly url: string
  readonly store: DataverseRecordStore
  readonly faults: DataverseFaults
  readonly changeTracking: DataverseChangeTracking
  /** Web API requests received (faulted and refused ones included), optionally by method and/or entity set. */
  requestCount (filter?: WebApiRequestFilter): number
  /**
   * The most requests the emulator has held at once since start or the last `resetPeakConcurrency`:
   * what Dataverse counts against its 52 concurrent requests per user (reference doc §5).
   */
  peakConcurrency (): number
  resetPeakConcurrency (): void
  close (): Promise<void>
}

const WEB_API_PREFIX = '/api/data/v9.2/'
const JSON_CONTENT_TYPE = 'application/json; odata.metadata=minimal'
const MAX_BODY_BYTES = 16 * 1024 * 1024
const WRITE_METHODS = new Set(['POST', 'PATCH', 'DELETE'])
const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/

interface WebApiRequestRecord {
  readonly method: string
  readonly entitySet: string | undefined
}

interface RequestContext {
  readonly request: IncomingMessage
  readonly response: ServerResponse
  readonly url: URL
  /** `http://host:port/api/data/v9.2/` as the client addressed us: links must use it (§9.2). */
  readonly base: string
  readonly prefer: Preferences
  /** The systemuser the request acts as: the application user, or the one named by `MSCRMCallerID`. */
  readonly callerId: string
  /** Sends a write's answer: at once, or after the `delayResponsesAfterCommit` fault's delay. */
  readonly answerWrite: (send: () => void) => void
}

interface Preferences {
  readonly returnRepresentation: boolean
  readonly maxPageSize: number | undefined
  readonly trackChanges: boolean
  /** `odata.include-annotations` asked for formatted values (option-set labels, option-sets.ts). */
  readonly formattedValues: boolean
}

export async function startDataverseEmulator (options: DataverseEmulatorOptions = {}): Promise<DataverseEmulator> {
  const store = new RecordStore(options.defaultUserId === undefined ? {} : { defaultUserId: options.defaultUserId })
  const faults = new FaultInjector(options.latencyMs ?? 0)
  const requests: WebApiRequestRecord[] = []
  const heldAnswers = new Set<NodeJS.Timeout>()
  const businessUnitId = randomUUID()
  const organizationId = randomUUID()
  const trackingDisabledFor = new Set<string>(options.changeTracking?.disabledFor ?? [])
  const tokenLifetimeMs = options.changeTracking?.tokenLifetimeMs ?? DEFAULT_DELTA_TOKEN_LIFETIME_MS
  /** Delta tokens up to this version are expired by `expireTokens()`. */
  let tokensExpiredThrough = 0
  const changeTracking: DataverseChangeTracking = {
    expireTokens () {
      tokensExpiredThrough = store.currentVersion
      // Tokens issued from now on must name a later version than every expired one.
      store.nextVersion()
      store.forgetTombstonesThrough(tokensExpiredThrough)
    },
    setTracked (entitySet, tracked) {
      if (tracked) trackingDisabledFor.delete(entitySet)
      else trackingDisabledFor.add(entitySet)
    }
  }
  const requiredFields: Record<string, readonly string[]> = {
    leads: options.requiredFields?.leads ?? [],
    contacts: options.requiredFields?.contacts ?? []
  }

  for (const [entitySet, rows] of Object.entries(options.seed ?? {})) {
    for (const row of rows ?? []) store.insert(entitySet, row)
  }

  let inFlight = 0
  let peakInFlight = 0
  const server: Server = createServer((request, response) => {
    inFlight++
    peakInFlight = Math.max(peakInFlight, inFlight)
    response.once('close', () => { inFlight-- })
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent) {
        response.destroy()
        return
      }
      if (error instanceof DataverseError) {
        sendError(response, error)
        return
      }
      sendError(response, new DataverseError(500, '0x80040216', `An unexpected error occurred. (${(error as Error).message})`))
    })
  })

  async function handle (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const origin = `http://${request.headers.host ?? 'localhost'}`
    const url = new URL(request.url ?? '/', origin)
    let path: string
    try {
      // dynamics-web-api leaves alternate-key values raw in the path but Node encodes the query (§1.10).
      path = decodeURIComponent(url.pathname)
    } catch {
      throw queryError('The request URI is not valid.')
    }
    if (path.startsWith('/_emulator/')) {
      await handleControl(request, response, path.slice('/_emulator/'.length), url.searchParams)
      return
    }
    if (!path.startsWith(WEB_API_PREFIX)) {
      throw resourceNotFound(path.split('/').filter((segment) => segment !== '')[0] ?? '')
    }
    const resource = path.slice(WEB_API_PREFIX.length)
    const method = request.method ?? 'GET'
    requests.push({ method, entitySet: /^[A-Za-z_]\w*/.exec(resource)?.[0] })

    if (!isAuthorised(request.headers.authorization)) {
      response.writeHead(401, {
        'WWW-Authenticate': `Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize, resource_id=${origin}/`,
        'OData-Version': '4.0',
        'Content-Length': 0
      })
      response.end()
      return
    }
    if (faults.latencyMs > 0) await delay(faults.latencyMs)
    const fault = faults.takeFault()
    if (fault !== undefined) throw fault
    const holdAnswerMs = WRITE_METHODS.has(method) ? faults.takeDelayAfterCommit() : 0

    const context: RequestContext = {
      request,
      response,
      url,
      base: `${origin}${WEB_API_PREFIX}`,
      prefer: parsePrefer([request.headers.prefer ?? []].flat().join(',')),
      callerId: callerOf(request),
      answerWrite: (send) => {
        if (holdAnswerMs === 0) {
          send()
          return
        }
        // The row is already written; only the answer is late (a client timing out meanwhile
        // cannot know its write happened).
        const timer = setTimeout(() => {
          heldAnswers.delete(timer)
          if (!response.destroyed) send()
        }, holdAnswerMs)
        heldAnswers.add(timer)
      }
    }
    await routeWebApi(context, method, resource)
  }

  /**
   * Impersonation: `MSCRMCallerID: <systemuserid>` makes the request act as that user (Dataverse
   * records it in `modifiedby`); tests and the sandbox use it to write as a person, not the app.
   */
  function callerOf (request: IncomingMessage): string {
    const header = request.headers.mscrmcallerid
    if (typeof header !== 'string') return store.defaultUserId
    const id = GUID.exec(header.trim())?.[1]?.toLowerCase()
    if (id === undefined || !store.has('systemusers', id)) throw recordNotFound('systemuser', header.trim())
    return id
  }

  function isAuthorised (authorization: string | undefined): boolean {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')
    if (match === null) return false
    return options.verifyAccessToken === undefined || options.verifyAccessToken(match[1] ?? '')
  }

  async function routeWebApi (context: RequestContext, method: string, resource: string): Promise<void> {
    if (resource === 'WhoAmI' || resource === 'WhoAmI()') {
      if (method !== 'GET') throw noResource(context)
      sendJson(context.response, 200, {
        '@odata.context': `${context.base}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`,
        BusinessUnitId: businessUnitId,
        UserId: context.callerId,
        OrganizationId: organizationId
      })
      return
    }
    if (isAttributeMetadataPath(resource)) {
      if (method !== 'GET') throw noResource(context)
      sendJson(context.response, 200, answerAttributeMetadata(resource, context.url.searchParams, context.base))
      return
    }
    if (resource === '$batch') {
      if (method !== 'POST') throw noResource(context)
      return await answerBatch(context)
    }
    const boundAction = /^([A-Za-z_]\w*)\/Microsoft\.Dynamics\.CRM\.UpdateMultiple$/.exec(resource)
    if (boundAction !== null) {
      const definition = findEntityDefinition(boundAction[1] ?? '')
      if (method !== 'POST' || definition === undefined || !BULK_MESSAGE_TABLES.has(definition.entitySet)) throw noResource(context)
      return await updateMultiple(context, definition)
    }
    const qualify = /^leads\(([^)]*)\)\/Microsoft\.Dynamics\.CRM\.QualifyLead$/.exec(resource)
    if (qualify !== null) {
      if (method !== 'POST') throw noResource(context)
      const definition = findEntityDefinition('leads')!
      const parameters = readQualifyLeadParameters(await readJsonBody(context.request, definition))
      const { created } = qualifyLead(store, parseKey(qualify[1] ?? '', definition), parameters, context.callerId)
      context.answerWrite(() => sendJson(context.response, 200, { '@odata.context': `${context.base}$metadata#Collection(Microsoft.Dynamics.CRM.crmbaseentity)`, value: created }))
      return
    }
    const match = /^([A-Za-z_]\w*)(?:\((.*)\))?(\/\$count)?$/.exec(resource)
    const definition = match === null ? undefined : findEntityDefinition(match[1] ?? '')
    if (match === null || definition === undefined) {
      throw resourceNotFound(/^[^(/]*/.exec(resource)?.[0] ?? resource)
    }
    const [, , keyText, countSegment] = match
    if (keyText === undefined) {
      if (countSegment !== undefined) {
        if (method !== 'GET') throw noResource(context)
        countCollection(context, definition)
        return
      }
      if (method === 'GET') return retrieveMultiple(context, definition)
      if (method === 'POST') return await createRecord(context, definition)
      throw noResource(context)
    }
    if (countSegment !== undefined) throw noResource(context)
    const id = parseKey(keyText, definition)
    if (method === 'GET') return retrieveRecord(context, definition, id)
    if (method === 'PATCH') return await updateOrUpsertRecord(context, definition, id)
    if (method === 'DELETE') return deleteRecord(context, definition, id)
    throw noResource(context)
  }

  function payloadContext (definition: EntityDefinition, mode: 'create' | 'update'): Parameters<typeof readRecordPayload>[1] {
    return {
      definition,
      mode,
      requiredColumns: requiredFields[definition.entitySet] ?? [],
      rowExists: (entitySet, id) => findEntityDefinition(entitySet) !== undefined && store.has(entitySet, id),
      logicalNameOf: (entitySet) => findEntityDefinition(entitySet)?.logicalName
    }
  }

  function entityContext (context: RequestContext, definition: EntityDefinition, select: readonly string[] | undefined): string {
    return `${context.base}$metadata#${definition.entitySet}${select === undefined ? '' : `(${select.join(',')})`}/$entity`
  }

  function selectFrom (context: RequestContext, definition: EntityDefinition): readonly string[] | undefined {
    return parseCollectionQuery(new URLSearchParams(
      context.url.searchParams.has('$select') ? { $select: context.url.searchParams.get('$select') ?? '' } : {}
    ), definition).select
  }

  function retrieveMultiple (context: RequestContext, definition: EntityDefinition): void {
    const params = context.url.searchParams
    const skipToken = params.get('$skiptoken')
    const continuesTrackedRead = skipToken !== null && isTrackedSkipToken(skipToken)
    if (params.has('$deltatoken') || continuesTrackedRead || context.prefer.trackChanges) {
      if (isTracked(definition)) {
        retrieveChanges(context, definition)
        return
      }
      // A table without change tracking ignores the preference (OData lets a service ignore one);
      // a delta token for it can only be stale.
      if (params.has('$deltatoken') || continuesTrackedRead) throw expiredDeltaToken()
    }
    const query = parseCollectionQuery(context.url.searchParams, definition)
    const page = runCollectionQuery(store.scan(definition.entitySet), query, context.prefer.maxPageSize)
    const body: Record<string, unknown> = {
      '@odata.context': `${context.base}$metadata#${definition.entitySet}${query.select === undefined ? '' : `(${query.select.join(',')})`}`
    }
    if (query.count) body['@odata.count'] = page.totalCount
    body.value = page.rows.map((row) => shownRow(context, definition, row, query.select))
    if (page.nextOffset !== undefined) body['@odata.nextLink'] = nextLink(context, definition, page.nextOffset)
    const headers: Record<string, string> = {}
    if (context.prefer.maxPageSize !== undefined) headers['Preference-Applied'] = `odata.maxpagesize=${context.prefer.maxPageSize}`
    sendJson(context.response, 200, body, headers)
  }

  /** A row as a read answers it: its selected columns, annotated when the Prefer header asks. */
  function shownRow (context: RequestContext, definition: EntityDefinition, row: Readonly<DataverseRecord>, select: readonly string[] | undefined): DataverseRecord {
    const projected = projectRow(row, select, definition)
    return context.prefer.formattedValues ? withFormattedValues(projected, definition) : projected
  }

  function isTracked (definition: EntityDefinition): boolean {
    return definition.changeTracking && !trackingDisabledFor.has(definition.entitySet)
  }

  /** A change-tracking read (reference doc §2): the initial one, or a delta read from `$deltatoken`. */
  function retrieveChanges (context: RequestContext, definition: EntityDefinition): void {
    const params = context.url.searchParams
    const refused = refusedTrackingOption(params)
    if (refused !== undefined) throw refused
    const deltaTokenText = params.get('$deltatoken')
    let since: number | undefined
    if (deltaTokenText !== null) {
      const token = decodeDeltaToken(deltaTokenText)
      const valid = token !== undefined && isDeltaTokenValid(token, {
        now: new Date(),
        lifetimeMs: tokenLifetimeMs,
        currentVersion: store.currentVersion,
        expiredThrough: tokensExpiredThrough
      })
      if (!valid) throw expiredDeltaToken()
      since = token.version
    }
    const skipToken = params.get('$skiptoken')
    const position = skipToken === null ? firstPosition(store.currentVersion) : decodeTrackedSkipToken(skipToken)
    if (since !== undefined && position.through < since) throw queryError('The $skiptoken value is not valid.')
    const { select } = parseCollectionQuery(new URLSearchParams(
      params.has('$select') ? { $select: params.get('$select') ?? '' } : {}
    ), definition)
    const page = readTrackedPage({
      rows: store.scan(definition.entitySet),
      tombstones: store.tombstones(definition.entitySet),
      primaryKey: definition.primaryKey,
      since,
      position,
      pageSize: context.prefer.maxPageSize ?? MAX_PAGE_SIZE
    })
    const selected = select === undefined ? '' : `(${select.join(',')})`
    const body: Record<string, unknown> = {
      '@odata.context': `${context.base}$metadata#${definition.entitySet}${selected}${since === undefined ? '' : '/$delta'}`,
      value: [
        ...page.rows.map((row) => shownRow(context, definition, row, select)),
        ...page.deletedIds.map((id) => ({
          '@odata.context': `${context.base}$metadata#${definition.entitySet}/$deletedEntity`,
          id,
          reason: 'deleted'
        }))
      ]
    }
    if (page.next !== undefined) {
      body['@odata.nextLink'] = linkWith(context, definition, ['$skiptoken'], `$skiptoken=${encodeURIComponent(encodeTrackedSkipToken(page.next))}`)
    } else {
      const token = encodeDeltaToken({ version: position.through, issuedAt: new Date() })
      // Encoded as Dataverse's sample shows it (`919042%2108%2f22%2f2017…`, §2): `!` too.
      body['@odata.deltaLink'] = linkWith(context, definition, ['$skiptoken', '$deltatoken'], `$deltatoken=${encodeURIComponent(token).replaceAll('!', '%21')}`)
    }
    const applied = ['odata.track-changes']
    if (context.prefer.maxPageSize !== undefined) applied.push(`odata.maxpagesize=${context.prefer.maxPageSize}`)
    sendJson(context.response, 200, body, { 'Preference-Applied': applied.join(',') })
  }

  /** The request's own query without `dropped`, plus `extra`, on the base URL the client used (§9.2). */
  function linkWith (context: RequestContext, definition: EntityDefinition, dropped: readonly string[], extra: string): string {
    const parts: string[] = []
    for (const [name, value] of context.url.searchParams) {
      if (!dropped.includes(name)) parts.push(`${name}=${encodeURIComponent(value)}`)
    }
    parts.push(extra)
    return `${context.base}${definition.entitySet}?${parts.join('&')}`
  }

  /** Same query, next `$skiptoken`, on the base URL the client used (dynamics-web-api string-replaces it, §9.2). */
  function nextLink (context: RequestContext, definition: EntityDefinition, offset: number): string {
    return linkWith(context, definition, ['$skiptoken'], `$skiptoken=${encodeURIComponent(encodeSkipToken(offset))}`)
  }

  function countCollection (context: RequestContext, definition: EntityDefinition): void {
    const query = parseCollectionQuery(context.url.searchParams, definition)
    const { totalCount } = runCollectionQuery(store.scan(definition.entitySet), { ...query, offset: 0 }, MAX_PAGE_SIZE)
    const payload = String(totalCount)
    context.response.writeHead(200, {
      'Content-Type': 'text/plain',
      'OData-Version': '4.0',
      'Content-Length': Buffer.byteLength(payload)
    })
    context.response.end(payload)
  }

  function retrieveRecord (context: RequestContext, definition: EntityDefinition, id: string): void {
    const row = store.get(definition.entitySet, id)
    if (row === undefined) throw recordNotFound(definition.logicalName, id)
    const etag = etagOf(row)
    const ifNoneMatch = context.request.headers['if-none-match']
    if (ifNoneMatch !== undefined && ifNoneMatch !== 'null' && (ifNoneMatch === '*' || ifNoneMatch === etag)) {
      context.response.writeHead(304, { 'OData-Version': '4.0', ETag: etag })
      context.response.end()
      return
    }
    const select = selectFrom(context, definition)
    sendJson(context.response, 200, {
      '@odata.context': entityContext(context, definition, select),
      ...shownRow(context, definition, row, select)
    }, { ETag: etag })
  }

  async function createRecord (context: RequestContext, definition: EntityDefinition): Promise<void> {
    const body = await readJsonBody(context.request, definition)
    const changes = readRecordPayload(body, payloadContext(definition, 'create'))
    const givenId = changes[definition.primaryKey]
    if (typeof givenId === 'string' && store.has(definition.entitySet, givenId)) throw recordAlreadyExists()
    assertStateStatusPair(definition.logicalName, changes, { ...definition.defaults, ...changes })
    const id = store.insert(definition.entitySet, { ...changes, ...authoredBy(context, 'create') })
    sendWriteResult(context, definition, id, 'created')
  }

  async function updateOrUpsertRecord (context: RequestContext, definition: EntityDefinition, id: string): Promise<void> {
    const existing = store.get(definition.entitySet, id)
    const ifMatch = context.request.headers['if-match']
    const ifNoneMatch = context.request.headers['if-none-match']
    if (ifMatch !== undefined) {
      // `If-Match: *` turns the upsert into a pure update (dynamics-web-api's update() always sends it, §1.5).
      if (existing === undefined) throw recordNotFound(definition.logicalName, id)
      if (ifMatch !== '*' && ifMatch !== etagOf(existing)) throw versionMismatch()
    }
    if (ifNoneMatch === '*' && existing !== undefined) throw recordAlreadyExists()

    const body = await readJsonBody(context.request, definition)
    if (existing !== undefined) {
      const changes = readRecordPayload(body, payloadContext(definition, 'update'))
      // A key column cannot be changed through its own key (§1.6).
      delete changes[definition.primaryKey]
      assertStateStatusPair(definition.logicalName, changes, { ...existing, ...changes })
      store.update(definition.entitySet, id, { ...changes, ...authoredBy(context, 'update') })
      sendWriteResult(context, definition, id, 'updated')
      return
    }
    const changes = readRecordPayload(body, payloadContext(definition, 'create'))
    changes[definition.primaryKey] = id
    assertStateStatusPair(definition.logicalName, changes, { ...definition.defaults, ...changes })
    store.insert(definition.entitySet, { ...changes, ...authoredBy(context, 'create') })
    sendWriteResult(context, definition, id, 'created')
  }

  /**
   * `UpdateMultiple` (reference doc §4): all targets checked first, then all written, so one bad
   * target leaves every row as it was (a standard table's bulk message is one transaction). Each
   * row gets `modifiedon`, `_modifiedby_value` and a version as a single PATCH would, so change
   * tracking reports them.
   */
  async function updateMultiple (context: RequestContext, definition: EntityDefinition): Promise<void> {
    const body = await readJsonBody(context.request, definition)
    const planned = planUpdateMultiple(body, {
      definition,
      readColumns: (target) => readRecordPayload(target, payloadContext(definition, 'update')),
      rowExists: (id) => store.has(definition.entitySet, id)
    })
    // One transaction: a target with an invalid state/status pair refuses the whole request.
    for (const { id, changes } of planned) assertStateStatusPair(definition.logicalName, changes, { ...store.get(definition.entitySet, id), ...changes })
    for (const { id, changes } of planned) {
      store.update(definition.entitySet, id, { ...changes, ...authoredBy(context, 'update') })
    }
    context.answerWrite(() => {
      context.response.writeHead(204, { 'OData-Version': '4.0' })
      context.response.end()
    })
  }

  /** `$batch` (batch.ts): each inner request goes through `routeWebApi` as if it had come alone. */
  async function answerBatch (context: RequestContext): Promise<void> {
    const request = { contentType: context.request.headers['content-type'], body: await readBody(context.request), prefer: [context.request.headers.prefer ?? []].flat().join(','), base: context.base }
    const answer = await executeBatch(request, async (part) => {
      const exchange = new BatchPartExchange(part)
      try {
        const callerId = part.headers.mscrmcallerid === undefined ? context.callerId : callerOf(exchange.request)
        const inner: RequestContext = { ...context, request: exchange.request, response: exchange.response, url: part.url, prefer: parsePrefer(part.headers.prefer), callerId, answerWrite: (send) => send() }
        await routeWebApi(inner, part.method, part.resource)
      } catch (error) {
        exchange.fail(error)
      }
      return exchange.answer()
    }, store)
    context.answerWrite(() => {
      context.response.writeHead(answer.status, answer.headers)
      context.response.end(answer.body)
    })
  }

  function authoredBy (context: RequestContext, write: 'create' | 'update'): DataverseRecord {
    return write === 'create'
      ? { _createdby_value: context.callerId, _modifiedby_value: context.callerId }
      : { _modifiedby_value: context.callerId }
  }

  function deleteRecord (context: RequestContext, definition: EntityDefinition, id: string): void {
    const existing = store.get(definition.entitySet, id)
    if (existing === undefined) throw recordNotFound(definition.logicalName, id)
    const ifMatch = context.request.headers['if-match']
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== etagOf(existing)) throw versionMismatch()
    store.delete(definition.entitySet, id)
    context.answerWrite(() => {
      context.response.writeHead(204, { 'OData-Version': '4.0' })
      context.response.end()
    })
  }

  /**
   * Create → 204 + absolute OData-EntityId, or 201 + body with `return=representation`; update → 204,
   * or 200 + body (§1.3, §1.5, §1.6).
   */
  function sendWriteResult (context: RequestContext, definition: EntityDefinition, id: string, outcome: 'created' | 'updated'): void {
    const row = store.get(definition.entitySet, id) as DataverseRecord
    const etag = etagOf(row)
    if (context.prefer.returnRepresentation) {
      const select = selectFrom(context, definition)
      const body = { '@odata.context': entityContext(context, definition, select), ...shownRow(context, definition, row, select) }
      context.answerWrite(() => sendJson(context.response, outcome === 'created' ? 201 : 200, body, { 'Preference-Applied': 'return=representation', ETag: etag }))
      return
    }
    context.answerWrite(() => {
      context.response.writeHead(204, {
        'OData-Version': '4.0',
        'OData-EntityId': `${context.base}${definition.entitySet}(${id})`,
        ETag: etag
      })
      context.response.end()
    })
  }

  async function handleControl (request: IncomingMessage, response: ServerResponse, route: string, query: URLSearchParams): Promise<void> {
    const method = request.method ?? 'GET'
    if (route === 'faults') {
      if (method === 'GET') {
        sendJson(response, 200, faults.state())
        return
      }
      if (method === 'PUT') {
        const raw = await readBody(request)
        try {
          faults.apply(JSON.parse(raw === '' ? '{}' : raw))
        } catch (error) {
          if (error instanceof FaultSettingsError || error instanceof SyntaxError) {
            sendJson(response, 400, { error: { code: 'INVALID_FAULT_SETTINGS', message: error.message } })
            return
          }
          throw error
        }
        sendJson(response, 200, faults.state())
        return
      }
      if (method === 'DELETE') {
        faults.clear()
        response.writeHead(204)
        response.end()
        return
      }
    }
    if (route === 'change-tracking/expire-tokens' && method === 'POST') {
      changeTracking.expireTokens()
      response.writeHead(204)
      response.end()
      return
    }
    const records = /^records\/([A-Za-z_]\w*)$/.exec(route)
    if (records !== null) {
      const entitySet = records[1] ?? ''
      try {
        if (method === 'GET') {
          const listing = parseRecordListing(query)
          if (typeof listing === 'string') {
            sendJson(response, 400, { error: { code: 'INVALID_RECORD_LISTING', message: listing } })
            return
          }
          // Read by people pasting the sandbox guide's curl commands: indented, and only the columns asked for.
          sendJson(response, 200, listRecords(store.list(entitySet), listing), {}, 2)
          return
        }
        if (method === 'POST') {
          const row = parseJsonObject(await readBody(request))
          if (row === undefined) {
            sendJson(response, 400, { error: { code: 'INVALID_RECORD', message: 'the body must be a JSON object: the row to store' } })
            return
          }
          const id = store.insert(entitySet, row)
          sendJson(response, 201, { id })
          return
        }
      } catch (error) {
        if (error instanceof UnknownEntitySetError) {
          sendJson(response, 404, { error: { code: error.code, message: error.message } })
          return
        }
        throw error
      }
    }
    sendJson(response, 404, { error: { code: 'NOT_FOUND', message: `no emulator control at ${method} /_emulator/${route}` } })
  }

  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address

  let closing: Promise<void> | undefined
  return {
    url: `http://${host}:${address.port}`,
    store,
    faults,
    changeTracking,
    peakConcurrency () {
      return peakInFlight
    },
    resetPeakConcurrency () {
      peakInFlight = inFlight
    },
    requestCount (filter = {}) {
      return requests.filter((entry) =>
        (filter.method === undefined || entry.method === filter.method.toUpperCase()) &&
        (filter.entitySet === undefined || entry.entitySet === filter.entitySet)
      ).length
    },
    close () {
      closing ??= new Promise<void>((resolve) => {
        for (const timer of heldAnswers) clearTimeout(timer)
        heldAnswers.clear()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}

function parsePrefer (header: string | undefined): Preferences {
  let returnRepresentation = false
  let maxPageSize: number | undefined
  let trackChanges = false
  let formattedValues = false
  for (const preference of (header ?? '').split(',')) {
    const [name = '', value] = preference.trim().split('=')
    if (name === 'odata.include-annotations' && includesFormattedValues(value)) formattedValues = true
    if (name === 'return' && value === 'representation') returnRepresentation = true
    if (name === 'odata.track-changes') trackChanges = true
    if (name === 'odata.maxpagesize' && value !== undefined) {
      const size = Number(value)
      if (Number.isInteger(size) && size > 0) maxPageSize = Math.min(size, MAX_PAGE_SIZE)
    }
  }
  return { returnRepresentation, maxPageSize, trackChanges, formattedValues }
}

/** `<guid>`, `{<guid>}` or `<primarykey>=<guid>`; alternate keys are not defined in the emulator (§1.7). */
function parseKey (keyText: string, definition: EntityDefinition): string {
  const named = keyText.startsWith(`${definition.primaryKey}=`) ? keyText.slice(definition.primaryKey.length + 1) : keyText
  const match = GUID.exec(named.trim())
  if (match === null) {
    throw new DataverseError(400, '0x80060888',
      `The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.${definition.logicalName}'. Ensure that the names and number of key properties match the declared or alternate key properties for the resource 'Microsoft.Dynamics.CRM.${definition.logicalName}'.`)
  }
  return (match[1] ?? '').toLowerCase()
}

function etagOf (row: DataverseRecord): string {
  return `W/"${String(row.versionnumber)}"`
}

function noResource (context: RequestContext): DataverseError {
  return new DataverseError(404, '0x0', `No HTTP resource was found that matches the request URI '${context.url.href}'.`)
}

async function readBody (request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > MAX_BODY_BYTES) throw new DataverseError(413, '0x0', 'The request body is too large.')
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

async function readJsonBody (request: IncomingMessage, definition: EntityDefinition): Promise<unknown> {
  const raw = await readBody(request)
  try {
    return JSON.parse(raw)
  } catch {
    throw invalidPayload(definition.entitySet, 'System.Text.Json.JsonException: The request body is not valid JSON.')
  }
}

function sendJson (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, indent = 0): void {
  const payload = JSON.stringify(body, null, indent)
  response.writeHead(status, {
    'Content-Type': JSON_CONTENT_TYPE,
    'OData-Version': '4.0',
    'Content-Length': Buffer.byteLength(payload),
    ...headers
  })
  response.end(payload)
}

function sendError (response: ServerResponse, error: DataverseError): void {
  sendJson(response, error.status, error.toBody(), { ...error.headers })
}

/** `GET /_emulator/records/<set>?$select=a,b&$top=n`: the OData option names, applied to the stored rows. */
interface RecordListing { readonly select?: readonly string[], readonly top?: number }

function parseRecordListing (query: URLSearchParams): RecordListing | string {
  const select = query.get('$select')
  const top = query.get('$top')
  if (top !== null && !/^\d+$/.test(top)) return '$top must be a non-negative integer'
  return {
    ...(select === null ? {} : { select: select.split(',').map((column) => column.trim()).filter((column) => column !== '') }),
    ...(top === null ? {} : { top: Number(top) })
  }
}

function listRecords (rows: readonly DataverseRecord[], listing: RecordListing): DataverseRecord[] {
  const kept = listing.top === undefined ? rows : rows.slice(0, listing.top)
  const { select } = listing
  if (select === undefined) return [...kept]
  return kept.map((row) => Object.fromEntries(select.filter((column) => column in row).map((column) => [column, row[column]])))
}

function parseJsonObject (text: string): DataverseRecord | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as DataverseRecord : undefined
  } catch {
    return undefined
  }
}
