import { asObject } from './installed-service.ts'

/**
 * Shape check of a `flowCallBack` body (reference §1.7, CFA-Swagger `flowCallBack`,
 * `callbackData`, `leadData`): `munchkinId` required; every `objectData` item needs
 * `leadData.id` (int64). Adobe's mock callback endpoint answers 400 on schema failure [LK].
 */

export interface FlowCallbackItem {
  readonly leadData: Readonly<Record<string, unknown>> & { readonly id: number }
  readonly activityData: Readonly<Record<string, unknown>>
}

export interface FlowCallbackBody {
  readonly munchkinId: string
  readonly errorCode?: string
  readonly errorMessage?: string
  readonly leadDefaults: Readonly<Record<string, unknown>>
  readonly activityDefaults: Readonly<Record<string, unknown>>
  readonly objectData: readonly FlowCallbackItem[]
}

export type FlowCallbackParse =
  | { readonly ok: true, readonly body: FlowCallbackBody }
  | { readonly ok: false, readonly problems: readonly string[] }

export function parseFlowCallbackBody (value: unknown): FlowCallbackParse {
  const body = asObject(value)
  if (body === undefined) return { ok: false, problems: ['body must be a JSON object'] }
  const problems: string[] = []
  if (typeof body.munchkinId !== 'string') problems.push('munchkinId is required and must be a string')
  for (const key of ['errorCode', 'errorMessage'] as const) {
    if (body[key] !== undefined && typeof body[key] !== 'string') problems.push(`${key} must be a string`)
  }
  const defaults = body.defaultValues === undefined ? {} : asObject(body.defaultValues)
  if (defaults === undefined) problems.push('defaultValues must be an object')
  const leadDefaults = optionalObject(defaults?.leadDefaults, 'defaultValues.leadDefaults', problems)
  const activityDefaults = optionalObject(defaults?.activityDefaults, 'defaultValues.activityDefaults', problems)

  const items: FlowCallbackItem[] = []
  if (body.objectData !== undefined && !Array.isArray(body.objectData)) problems.push('objectData must be an array')
  const rawItems: unknown[] = Array.isArray(body.objectData) ? body.objectData : []
  rawItems.forEach((raw, index) => {
    const item = asObject(raw)
    const leadData = asObject(item?.leadData)
    if (item === undefined || leadData === undefined) {
      problems.push(`objectData[${index}].leadData is required`)
      return
    }
    if (typeof leadData.id !== 'number' || !Number.isSafeInteger(leadData.id)) {
      problems.push(`objectData[${index}].leadData.id is required and must be an integer`)
      return
    }
    const activityData = item.activityData === undefined ? {} : asObject(item.activityData)
    if (activityData === undefined) {
      problems.push(`objectData[${index}].activityData must be an object`)
      return
    }
    if (activityData.success !== undefined && activityData.success !== null && typeof activityData.success !== 'boolean') {
      problems.push(`objectData[${index}].activityData.success must be a boolean`)
    }
    items.push({ leadData: leadData as FlowCallbackItem['leadData'], activityData })
  })
  if (problems.length > 0) return { ok: false, problems }
  return {
    ok: true,
    body: {
      munchkinId: body.munchkinId as string,
      ...(typeof body.errorCode === 'string' ? { errorCode: body.errorCode } : {}),
      ...(typeof body.errorMessage === 'string' ? { errorMessage: body.errorMessage } : {}),
      leadDefaults: leadDefaults ?? {},
      activityDefaults: activityDefaults ?? {},
      objectData: items
    }
  }
}

function optionalObject (value: unknown, path: string, problems: string[]): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  const object = asObject(value)
  if (object === undefined) problems.push(`${path} must be an object`)
  return object
}
