import type { ServiceDefinition } from '../schemas/flow-step.ts'
import { PERSON_FIELD_MAPPINGS } from '../sync/person-field-mapping.ts'

/** Flow-step parameter names (the `flowStepContext` keys) and the callback's names. */
export const FLOW_ATTRIBUTE = { assignTo: 'assignTo', syncAs: 'syncAs' } as const
export const CALLBACK_FIELD = { recordId: 'microsoftRecordId', recordType: 'microsoftType' } as const

/**
 * What `/getServiceDefinition` returns. Names follow the SPI rules (shared/reference/
 * marketo-rest-and-ssfs.md §1.3): flow parameters and activity attributes never share a name,
 * `success`/`reason`/`errorCode` are reserved and so not declared, and the primary attribute is a
 * flow attribute. Field mappings are service-driven so Marketo pre-selects the standard fields.
 */
export function buildServiceDefinition (publicUrl: string): ServiceDefinition {
  return {
    apiName: 'syncPersonToMicrosoft',
    i18n: {
      en_US: {
        name: 'Sync Person to Microsoft',
        filterName: 'Was Synced to Microsoft',
        triggerName: 'Is Synced to Microsoft',
        description: 'Creates the person in Microsoft Dynamics 365 as a lead (or contact) in real time when no lead or contact exists for them; does nothing when one does.'
      }
    },
    primaryAttribute: FLOW_ATTRIBUTE.syncAs,
    invocationPayloadDef: {
      globalAttributes: [],
      flowAttributes: [
        {
          apiName: FLOW_ATTRIBUTE.assignTo,
          i18n: { en_US: { name: 'Assign To', description: 'Dynamics user who will own a created lead or contact', uiTooltip: 'Leave empty to let Dynamics assign the integration user' } },
          dataType: 'string',
          hasPicklist: true,
          enforcePicklistSelect: true,
          picklistUrl: `${publicUrl}/getPicklist`
        },
        {
          apiName: FLOW_ATTRIBUTE.syncAs,
          i18n: { en_US: { name: 'Sync As', description: 'Create a missing person as a Lead or as a Contact (with no account)', uiTooltip: 'Lead or Contact' } },
          dataType: 'string',
          hasPicklist: true,
          enforcePicklistSelect: true,
          picklistUrl: `${publicUrl}/getPicklist`
        }
      ],
      fields: PERSON_FIELD_MAPPINGS.map((m) => ({
        serviceAttribute: m.marketoField,
        suggestedMarketoAttribute: m.marketoField,
        description: { en_US: `${m.label} (Dynamics ${m.lead}${m.contact === null ? ', leads only' : ''})` },
        dataType: m.dataType,
        required: m.marketoField === 'email'
      })),
      userDrivenMapping: false,
      programContext: false,
      campaignContext: true,
      triggerContext: true,
      programMemberContext: false,
      subscriptionContext: true
    },
    callbackPayloadDef: {
      attributes: [
        { apiName: 'outcome', i18n: { en_US: { name: 'Outcome', description: 'created, existed or failed' } }, dataType: 'string' },
        { apiName: 'dynamicsRecordId', i18n: { en_US: { name: 'Dynamics Record Id', description: 'The lead or contact id in Dynamics' } }, dataType: 'string' },
        { apiName: 'dynamicsRecordType', i18n: { en_US: { name: 'Dynamics Record Type', description: 'Lead or Contact' } }, dataType: 'string' }
      ],
      fields: [
        { serviceAttribute: CALLBACK_FIELD.recordId, suggestedMarketoAttribute: CALLBACK_FIELD.recordId, description: { en_US: 'Id of the person\'s lead or contact in Dynamics' }, dataType: 'string' },
        { serviceAttribute: CALLBACK_FIELD.recordType, suggestedMarketoAttribute: CALLBACK_FIELD.recordType, description: { en_US: 'Lead or Contact: where the person lives in Dynamics' }, dataType: 'string' }
      ],
      userDrivenMapping: false
    }
  }
}
