import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CampaignRunResult, RunCampaignOptions } from './campaign-runner.ts'
import { MarketoEmulatorError, NoServiceInstalledError } from './errors.ts'
import type { CallbackRecord } from './flow-callback-receiver.ts'
import { readBody, sendJson as sendCompactJson } from './http-io.ts'
import { asObject, type InstalledService } from './installed-service.ts'
import { PERSON_DETAIL_EDIT, type PersonStore } from './person-store.ts'
import type { RestLimitSettings, RestLimitUsage } from './rest-limits.ts'
import type { InstallServiceOptions } from './service-installer.ts'
import type { ServiceLogEntry } from './service-log.ts'

/**
 * `/_emulator/*`: the test controls over HTTP, for a separate process (the sandbox launcher's
 * curl demo). No authentication — the emulator is a loopback sandbox, never a deployment.
 *
 *   GET    /_emulator/persons                    → { persons }
 *   POST   /_emulator/persons          {fields}  → 201 { id }
 *   GET    /_emulator/persons/:id                → person | 404
 *   PATCH  /_emulator/persons/:id     {fields}  → 200 { changed: [field names] } | 404
 *                                                  (a marketer's edit: logged as Change Data Value, not as an API write)
 *   GET    /_emulator/limits                     → { settings, usage }
 *   PUT    /_emulator/limits {callsPerWindow?, windowMs?, maxConcurrent?, dailyQuota?, resetCounters?} → 204
 *   GET    /_emulator/persons/:id/activities     → { activities }
 *   POST   /_emulator/services   {openapiUrl, apiKey, globalAttributes?} → 201 { apiName, baseUrl, activityTypeId }
 *   POST   /_emulator/campaigns/run {personIds, flowStepContext?, kind, campaignId?, campaignName?}
 *                                                → 200 { campaignId, invocations: [{ token, batchid, status, body, personIds }] }
 *                                                  (uses the last installed service)
 *   GET    /_emulator/callbacks                  → { callbacks }
 *   GET    /_emulator/service-log                → { entries }
 *   PUT    /_emulator/faults  {rateLimitNext?, restErrorNext?: {code, message, count?}, latencyMs?,
 *                              callbackFailNext?: {count, status?}, callbackFailFor?: {ms, status?}, expireTokens?}
 *                                                → 204
 *   DELETE /_emulator/faults                     → 204 (all faults cleared)
 */

export interface EmulatorControls {
  readonly persons: PersonStore
  readonly callbacks: readonly CallbackRecord[]
  serviceLog: () => ServiceLogEntry[]
  installService: (options: InstallServiceOptions) => Promise<InstalledService>
  installedService: () => InstalledService | undefined
  runCampaign: (service: InstalledService, options: RunCampaignOptions) => Promise<CampaignRunResult>
  expireTokens: () => void
  readonly limits: {
    readonly settings: RestLimitSettings
    configure: (settings: Partial<RestLimitSettings>) => void
    usage: () => RestLimitUsage
    resetCounters: () => void
  }
  readonly faults: {
    rateLimitNext: (count?: number) => void
    errorNext: (code: string, message: string, count?: number) => void
    setLatency: (ms: number) => void
    reset: () => void
  }
  readonly callbackFaults: {
    failNext: (count: number, status?: number) => void
    failFor: (ms: number, status?: number) => void
    reset: () => void
  }
}

/** Control answers are read by people pasting the sandbox guide's curl commands: indented. */
function sendJson (res: ServerResponse, status: number, body: unknown): void {
  sendCompactJson(res, status, body, 'application/json', 2)
}

class ControlRequestError extends Error {
  readonly code = 'CONTROL_REQUEST_INVALID'
  constructor (message: string) {
    super(message)
    this.name = 'ControlRequestError'
  }
}

const PERSON_PATH = /^\/_emulator\/persons\/(\d+)(\/activities)?$/

export async function handleControlRequest (req: IncomingMessage, res: ServerResponse, url: URL, controls: EmulatorControls): Promise<void> {
  try {
    await route(req, res, url, controls)
  } catch (error) {
    if (error instanceof ControlRequestError) {
      sendJson(res, 400, { error: { code: error.code, message: error.message } })
    } else if (error instanceof NoServiceInstalledError) {
      sendJson(res, 409, { error: { code: error.code, message: error.message } })
    } else if (error instanceof MarketoEmulatorError) {
      sendJson(res, 422, { error: { code: error.code, message: error.message } })
    } else {
      throw error
    }
  }
}

async function route (req: IncomingMessage, res: ServerResponse, url: URL, controls: EmulatorControls): Promise<void> {
  const method = req.method ?? 'GET'
  const path = url.pathname
  const person = PERSON_PATH.exec(path)
  if (person !== null) {
    const id = Number(person[1])
    const unknown = (): void => sendJson(res, 404, { error: { code: 'UNKNOWN_PERSON', message: `no person with id ${id}` } })
    if (method === 'PATCH' && person[2] === undefined) {
      const body = await readJsonObject(req)
      if (controls.persons.get(id) === undefined) return unknown()
      return sendJson(res, 200, { changed: controls.persons.update(id, asObject(body.fields) ?? body, PERSON_DETAIL_EDIT) })
    }
    if (method !== 'GET') return methodNotAllowed(res)
    if (person[2] !== undefined) return sendJson(res, 200, { activities: controls.persons.activities(id) })
    const found = controls.persons.get(id)
    return found === undefined ? unknown() : sendJson(res, 200, found)
  }
  switch (`${method} ${path}`) {
    case 'GET /_emulator/persons':
      return sendJson(res, 200, { persons: controls.persons.list() })
    case 'POST /_emulator/persons': {
      const body = await readJsonObject(req)
      const fields = asObject(body.fields) ?? body
      return sendJson(res, 201, { id: controls.persons.create(fields) })
    }
    case 'POST /_emulator/services': {
      const body = await readJsonObject(req)
      if (typeof body.openapiUrl !== 'string' || typeof body.apiKey !== 'string') throw new ControlRequestError('openapiUrl and apiKey are required strings')
      const globalAttributes = asObject(body.globalAttributes)
      const service = await controls.installService({ openapiUrl: body.openapiUrl, apiKey: body.apiKey, ...(globalAttributes === undefined ? {} : { globalAttributes }) })
      return sendJson(res, 201, { apiName: service.definition.apiName, baseUrl: service.baseUrl, activityTypeId: service.activityTypeId })
    }
    case 'POST /_emulator/campaigns/run': {
      const body = await readJsonObject(req)
      const service = controls.installedService()
      if (service === undefined) throw new NoServiceInstalledError()
      // Without each invocation's payload (printed in a terminal it is pages of context per person,
      // and it carries the callback key); the service log and the callbacks show what was sent.
      const { campaignId, invocations } = await controls.runCampaign(service, parseRunOptions(body))
      return sendJson(res, 200, { campaignId, invocations: invocations.map(({ payload: _payload, ...invocation }) => invocation) })
    }
    case 'GET /_emulator/callbacks':
      return sendJson(res, 200, { callbacks: controls.callbacks })
    case 'GET /_emulator/service-log':
      return sendJson(res, 200, { entries: controls.serviceLog() })
    case 'PUT /_emulator/faults':
      applyFaults(await readJsonObject(req), controls)
      res.writeHead(204).end()
      return
    case 'GET /_emulator/limits':
      return sendJson(res, 200, { settings: controls.limits.settings, usage: controls.limits.usage() })
    case 'PUT /_emulator/limits':
      applyLimits(await readJsonObject(req), controls)
      res.writeHead(204).end()
      return
    case 'DELETE /_emulator/faults':
      controls.faults.reset()
      controls.callbackFaults.reset()
      res.writeHead(204).end()
      return
    default:
      return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no control endpoint ${method} ${path}` } })
  }
}

function parseRunOptions (body: Record<string, unknown>): RunCampaignOptions {
  const personIds = body.personIds
  if (!Array.isArray(personIds) || !personIds.every((id) => Number.isSafeInteger(id))) throw new ControlRequestError('personIds must be an array of integers')
  const kind = body.kind ?? 'batch'
  if (kind !== 'trigger' && kind !== 'batch') throw new ControlRequestError("kind must be 'trigger' or 'batch'")
  const flowStepContext = body.flowStepContext === undefined ? {} : asObject(body.flowStepContext)
  if (flowStepContext === undefined) throw new ControlRequestError('flowStepContext must be an object')
  return {
    personIds: personIds as number[],
    kind,
    flowStepContext,
    ...(typeof body.campaignId === 'number' ? { campaignId: body.campaignId } : {}),
    ...(typeof body.campaignName === 'string' ? { campaignName: body.campaignName } : {})
  }
}

function applyFaults (body: Record<string, unknown>, controls: EmulatorControls): void {
  if (typeof body.rateLimitNext === 'number') controls.faults.rateLimitNext(body.rateLimitNext)
  const restError = asObject(body.restErrorNext)
  if (restError !== undefined) {
    if (typeof restError.code !== 'string') throw new ControlRequestError('restErrorNext.code must be a string such as "611"')
    controls.faults.errorNext(restError.code, typeof restError.message === 'string' ? restError.message : 'Injected error', typeof restError.count === 'number' ? restError.count : 1)
  }
  if (typeof body.latencyMs === 'number') controls.faults.setLatency(body.latencyMs)
  const failNext = asObject(body.callbackFailNext)
  if (failNext !== undefined) controls.callbackFaults.failNext(numberOr(failNext.count, 1), numberOr(failNext.status, 503))
  const failFor = asObject(body.callbackFailFor)
  if (failFor !== undefined) controls.callbackFaults.failFor(numberOr(failFor.ms, 0), numberOr(failFor.status, 503))
  if (body.expireTokens === true) controls.expireTokens()
}

const LIMIT_SETTINGS = ['callsPerWindow', 'windowMs', 'maxConcurrent', 'dailyQuota'] as const

function applyLimits (body: Record<string, unknown>, controls: EmulatorControls): void {
  const settings: Partial<Record<typeof LIMIT_SETTINGS[number], number>> = {}
  for (const name of LIMIT_SETTINGS) {
    const value = body[name]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new ControlRequestError(`${name} must be a non-negative integer`)
    settings[name] = value
  }
  controls.limits.configure(settings)
  if (body.resetCounters === true) controls.limits.resetCounters()
}

function numberOr (value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback
}

async function readJsonObject (req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req, 1024 * 1024)
  let value: unknown
  try {
    value = text === '' ? {} : JSON.parse(text)
  } catch {
    throw new ControlRequestError('body is not valid JSON')
  }
  const object = asObject(value)
  if (object === undefined) throw new ControlRequestError('body must be a JSON object')
  return object
}

function methodNotAllowed (res: ServerResponse): void {
  sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'method not allowed' } })
}
