import { randomBytes, randomUUID } from 'node:crypto'
import { UnknownPersonError } from './errors.ts'
import type { InstalledService } from './installed-service.ts'
import type { CampaignKind, InvocationLedger } from './invocation-ledger.ts'
import { buildInvocationPayload, type InvocationPayload } from './invocation-payload.ts'
import type { Person, PersonStore } from './person-store.ts'
import { withApiKey } from './service-installer.ts'
import type { ServiceLog } from './service-log.ts'

/**
 * Runs a smart campaign whose flow contains the SSFS step: invokes `/submitAsyncAction` the way
 * Marketo does (reference §1.1 step 5, §1.6). Trigger campaigns send one person per invocation,
 * batch campaigns up to 1000 (third-party figure, §1.6). Invocations go out one after another;
 * how Marketo paces or parallelises them is undocumented (§4 q3).
 */

export interface RunCampaignOptions {
  readonly personIds: readonly number[]
  readonly kind: CampaignKind
  /** Flow-step parameter values chosen in the campaign, e.g. `{ assignTo: '<guid>', syncAs: 'Lead' }`. */
  readonly flowStepContext?: Readonly<Record<string, unknown>>
  /** Defaults to a fresh id per run. */
  readonly campaignId?: number
  readonly campaignName?: string
  /** For trigger campaigns; defaults to a form fill. */
  readonly triggeringContext?: { readonly name: string, readonly triggerName: string }
}

export interface InvocationResult {
  readonly token: string
  readonly batchid: string
  /** HTTP status the service answered; 0 when it could not be reached. */
  readonly status: number
  /** The service's response body as text (or the network error's message when status is 0). */
  readonly body: string
  readonly personIds: readonly number[]
  /** What was POSTed. */
  readonly payload: InvocationPayload
}

export interface CampaignRunResult {
  readonly campaignId: number
  readonly invocations: InvocationResult[]
}

export interface CampaignRunnerDependencies {
  readonly persons: PersonStore
  readonly ledger: InvocationLedger
  readonly serviceLog: ServiceLog
  readonly munchkinId: string
  readonly callbackUrl: string
  readonly requestTimeoutMs: number
  readonly now: () => Date
  readonly nextCampaignId: () => number
}

const MAX_PERSONS_PER_BATCH_INVOCATION = 1000
/** The service must answer 201; "Synchronous invocation is not supported" (§1.6). */
const ACCEPTED = 201

export async function runCampaign (service: InstalledService, options: RunCampaignOptions, deps: CampaignRunnerDependencies): Promise<CampaignRunResult> {
  const persons = options.personIds.map((id) => {
    const person = deps.persons.get(id)
    if (person === undefined) throw new UnknownPersonError(id)
    return person
  })
  const campaignId = options.campaignId ?? deps.nextCampaignId()
  const campaign = { id: campaignId, name: options.campaignName ?? `Sync persons (${options.kind})`, kind: options.kind }
  const chunks = options.kind === 'trigger' ? persons.map((person) => [person]) : chunk(persons, MAX_PERSONS_PER_BATCH_INVOCATION)
  // `batchid` is the "ID of the marketo campaign run" (§1.6): one per batch run, one per trigger firing.
  const batchRunId = randomUUID()
  const invocations: InvocationResult[] = []
  for (const group of chunks) {
    const batchid = options.kind === 'trigger' ? randomUUID() : batchRunId
    invocations.push(await invoke(service, group, { campaign, batchid, options, deps }))
  }
  return { campaignId, invocations }
}

async function invoke (
  service: InstalledService,
  persons: readonly Person[],
  run: { campaign: { id: number, name: string, kind: CampaignKind }, batchid: string, options: RunCampaignOptions, deps: CampaignRunnerDependencies }
): Promise<InvocationResult> {
  const { deps, options } = run
  const token = randomUUID()
  const apiCallBackKey = randomBytes(24).toString('base64url')
  const payload = buildInvocationPayload({
    token,
    batchid: run.batchid,
    apiCallBackKey,
    callbackUrl: deps.callbackUrl,
    munchkinId: deps.munchkinId,
    service,
    campaign: run.campaign,
    program: { id: 5000 + run.campaign.id, name: 'Marketo emulator program' },
    persons,
    flowStepContext: options.flowStepContext ?? {},
    triggeringContext: options.triggeringContext ?? { name: 'Contact Us Form', triggerName: 'Fills Out Form' },
    now: deps.now()
  })
  const personIds = persons.map((person) => person.id)
  // Opened before the POST: a fast service may call back before its 201 reaches us.
  const invocation = deps.ledger.open({
    token,
    batchid: run.batchid,
    apiCallBackKey,
    campaignId: run.campaign.id,
    kind: run.campaign.kind,
    service,
    personIds,
    flowStepContext: payload.objectData[0]?.flowStepContext ?? {}
  })
  const request = withApiKey(`${service.baseUrl}/submitAsyncAction`, service.apiKeyPlacement, service.apiKey)
  let status: number
  let body: string
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: { ...request.headers, 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(deps.requestTimeoutMs)
    })
    status = response.status
    body = await response.text()
  } catch (error) {
    status = 0
    body = (error as Error).message
  }
  invocation.invocationStatus = status
  if (status !== ACCEPTED) {
    if (invocation.state === 'awaiting-callback') invocation.state = 'refused-by-service'
    deps.serviceLog.record({
      at: deps.now().toISOString(),
      level: 'invocation',
      code: status === 0 ? 'UNREACHABLE' : String(status),
      message: body.slice(0, 500),
      token
    })
  }
  return { token, batchid: run.batchid, status, body, personIds, payload }
}

function chunk<T> (items: readonly T[], size: number): T[][] {
  const chunks: T[][] = []
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size))
  return chunks
}
