import { Type, type Static } from 'typebox'
import { I18nString } from './common.ts'
import { RECORD_TYPES } from '../domain/record-type.ts'

/**
 * Schemas of Adobe's Self-Service Flow Step interface (shared/reference/ssfs/CFA-Swagger.yaml,
 * component names kept), tightened where the interface leaves sizes open: every string and array
 * has a bound so a hostile body cannot make the API buffer or enqueue unbounded data, and person
 * fields are scalars only (Marketo sends field values, never nested objects).
 */

const MAX_PERSONS_PER_INVOCATION = 1000 // batch campaigns send up to 1000 (reference §1.6)

const FieldValue = Type.Union([Type.String({ maxLength: 4000 }), Type.Number(), Type.Boolean(), Type.Null()])

/** Built from the domain's list, so a new record type is one edit in src/domain/record-type.ts. */
export const SyncAs = Type.Union(RECORD_TYPES.map((type) => Type.Literal(type)), {
  description: 'Which Dynamics table a missing person is created in'
})

export const FlowStepContext = Type.Object({
  assignTo: Type.Optional(Type.String({ maxLength: 64, description: 'Dynamics systemuserid that will own a created record' })),
  syncAs: Type.Optional(SyncAs)
}, { additionalProperties: FieldValue, description: 'Flow-step parameter values chosen in the smart campaign' })

export const ObjectContext = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Marketo person id' })
}, { additionalProperties: FieldValue, description: 'The person: id plus the mapped outgoing fields, by service attribute name' })

export const ObjectData = Type.Object({
  objectType: Type.Literal('lead'),
  objectContext: ObjectContext,
  flowStepContext: Type.Optional(FlowStepContext),
  programMemberContext: Type.Optional(Type.Object({}, { additionalProperties: true })),
  triggeringContext: Type.Optional(Type.Object({
    name: Type.Optional(Type.String({ maxLength: 1000 })),
    triggerName: Type.Optional(Type.String({ maxLength: 1000 }))
  }, { additionalProperties: true }))
})
export type ObjectData = Static<typeof ObjectData>

const NamedThing = Type.Object({
  id: Type.Optional(Type.Number()),
  name: Type.Optional(Type.String({ maxLength: 1000 })),
  type: Type.Optional(Type.String({ maxLength: 100 }))
}, { additionalProperties: true })

/**
 * A value the worker sends back in a header of the callback (reference §1.7). RFC 9110 §5.5: a
 * field value is visible characters with spaces or tabs between them, never at either end (Node's
 * fetch trims those, which would change the token), and no CR, LF, NUL or other control character
 * (undici refuses CR, LF and NUL outright). Characters past ASCII are `obs-text` a sender must not
 * generate, and fetch refuses anything past U+00FF. Adobe's schema leaves these fields optional,
 * but Marketo always sends them, and an invocation without them could never be reported: refused.
 */
const HEADER_VALUE = '^[\\x21-\\x7E]+(?:[\\t ]+[\\x21-\\x7E]+)*$'
const VISIBLE_ASCII_WORD = '^[\\x21-\\x7E]+$'
const HeaderValue = (description: string) => Type.String({ minLength: 1, maxLength: 1024, pattern: HEADER_VALUE, description })

export const SubmitAsyncActionBody = Type.Object({
  token: HeaderValue('One-time token for the callback; sent back in its `x-callback-token` header'),
  batchid: Type.Optional(Type.String({ maxLength: 256, description: 'Id of the campaign run' })),
  apiCallBackKey: HeaderValue('API key for the callback; sent back in its `x-api-key` header'),
  campaignId: Type.Integer({ minimum: -2147483648, maximum: 2147483647 }),
  callbackUrl: Type.String({ format: 'uri', maxLength: 2048 }),
  context: Type.Object({
    subscription: Type.Object({
      munchkinId: Type.String({ minLength: 1, maxLength: 64, pattern: VISIBLE_ASCII_WORD, description: 'The Marketo instance, e.g. 123-ABC-456; the callback names it' }),
      prefix: Type.Optional(Type.String({ maxLength: 256 })),
      crmSyncStatus: Type.Optional(Type.String({ maxLength: 256 }))
    }, { additionalProperties: true }),
    admin: Type.Optional(Type.Object({}, { additionalProperties: true })),
    campaign: Type.Optional(NamedThing),
    program: Type.Optional(NamedThing)
  }, { additionalProperties: true }),
  objectData: Type.Optional(Type.Array(ObjectData, { maxItems: MAX_PERSONS_PER_INVOCATION }))
}, { additionalProperties: true, title: 'async', description: 'An invocation of the flow step by a smart campaign' })
export type SubmitAsyncActionBody = Static<typeof SubmitAsyncActionBody>

export const SubmitAsyncActionAccepted = Type.Object({
  accepted: Type.Literal(true),
  invocationId: Type.String({ description: 'Derived from the invocation; a retried invocation gets the same id' }),
  persons: Type.Integer({ description: 'How many persons the invocation carried (an invocation sent again is not queued twice)' })
})

export const ServiceStatus = Type.Object({
  info: Type.Array(Type.String()),
  warnings: Type.Array(Type.String()),
  errors: Type.Array(Type.String())
}, { title: 'serviceStatus' })
export type ServiceStatus = Static<typeof ServiceStatus>

export const GetPicklistBody = Type.Object({
  name: Type.String({ maxLength: 256 }),
  type: Type.Union([Type.Literal('flow'), Type.Literal('global'), Type.Literal('header')]),
  fieldMappingContext: Type.Optional(Type.Object({}, { additionalProperties: true }))
}, { title: 'getPicklistRequest' })
export type GetPicklistBody = Static<typeof GetPicklistBody>

export const PicklistChoice = Type.Object({
  displayValue: I18nString,
  submittedValue: Type.Union([Type.String(), Type.Number(), Type.Boolean()])
})
export const PicklistObject = Type.Object({
  choices: Type.Array(PicklistChoice, { maxItems: 1000 })
}, { title: 'picklistObject' })
export type PicklistObject = Static<typeof PicklistObject>

const FieldType = Type.Enum(['boolean', 'integer', 'date', 'datetime', 'email', 'float', 'score', 'string', 'url', 'text'])

const AttributeI18n = Type.Object({
  name: Type.String(),
  description: Type.Optional(Type.String()),
  uiTooltip: Type.Optional(Type.String())
})

const AttributeObject = Type.Object({
  apiName: Type.String(),
  i18n: Type.Object({ en_US: AttributeI18n }),
  dataType: FieldType,
  hasPicklist: Type.Optional(Type.Boolean()),
  enforcePicklistSelect: Type.Optional(Type.Boolean()),
  picklistUrl: Type.Optional(Type.String())
})

const FieldMapping = Type.Object({
  serviceAttribute: Type.String(),
  suggestedMarketoAttribute: Type.Optional(Type.String()),
  description: I18nString,
  dataType: FieldType,
  required: Type.Optional(Type.Boolean())
})

export const ServiceDefinition = Type.Object({
  apiName: Type.String(),
  i18n: Type.Object({
    en_US: Type.Object({
      name: Type.String(),
      filterName: Type.String(),
      triggerName: Type.String(),
      description: Type.String()
    })
  }),
  primaryAttribute: Type.String(),
  invocationPayloadDef: Type.Object({
    globalAttributes: Type.Array(AttributeObject),
    flowAttributes: Type.Array(AttributeObject),
    fields: Type.Array(FieldMapping),
    userDrivenMapping: Type.Boolean(),
    programContext: Type.Boolean(),
    campaignContext: Type.Boolean(),
    triggerContext: Type.Boolean(),
    programMemberContext: Type.Boolean(),
    subscriptionContext: Type.Boolean()
  }),
  callbackPayloadDef: Type.Object({
    attributes: Type.Array(AttributeObject),
    fields: Type.Array(FieldMapping),
    userDrivenMapping: Type.Boolean()
  })
}, { title: 'serviceDefinition' })
export type ServiceDefinition = Static<typeof ServiceDefinition>

/** What the service POSTs back to Marketo's callbackUrl (`flowCallBack`). */
export const CallbackActivityData = Type.Object({
  success: Type.Boolean(),
  reason: Type.Optional(Type.String()),
  errorCode: Type.Optional(Type.String()),
  outcome: Type.String(),
  dynamicsRecordId: Type.Optional(Type.String()),
  dynamicsRecordType: Type.Optional(Type.String())
})
export const FlowCallbackBody = Type.Object({
  munchkinId: Type.String(),
  objectData: Type.Array(Type.Object({
    leadData: Type.Object({ id: Type.Integer() }, { additionalProperties: Type.Union([Type.String(), Type.Number(), Type.Null()]) }),
    activityData: CallbackActivityData
  }))
}, { title: 'flowCallBack' })
export type FlowCallbackBody = Static<typeof FlowCallbackBody>
