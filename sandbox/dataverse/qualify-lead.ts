import { DataverseError, queryError, recordNotFound } from './dataverse-error.ts'
import type { DataverseRecord, DataverseRecordStore } from './record-store.ts'

/**
 * The `QualifyLead` action (learn.microsoft.com, "QualifyLead Action", the Web API form of
 * QualifyLeadRequest): `POST leads(<id>)/Microsoft.Dynamics.CRM.QualifyLead` with the required
 * parameters `CreateAccount`, `CreateContact`, `CreateOpportunity` (Edm.Boolean) and `Status`
 * (Edm.Int32, the lead's new status). It "qualifies a lead and create[s] account, contact, and
 * opportunity records that are linked to the originating lead record": a created contact has its
 * `originatingleadid` lookup set to the lead (read back as `_originatingleadid_value`), and the lead
 * goes to statecode 1 Qualified with the given status (reference doc dataverse-web-api-and-msal.md
 * §7: status 3 Qualified is the one status of state 1). The answer is the created records as a
 * collection of `crmbaseentity` references.
 *
 * Emulated: the contact (and the account, named after the lead's company) created with the lead's
 * person columns, as the out-of-the-box lead → contact column mapping copies them; custom columns
 * (such as the sync filter `new_synctomkto`) are not mapped by default and are not copied.
 * Not emulated: opportunities (no such table here), refused with 501.
 */

/** Lead columns the out-of-the-box mapping copies to the new contact (inferred: the person columns both tables share). */
const COPIED_TO_CONTACT = [
  'salutation', 'firstname', 'middlename', 'lastname', 'emailaddress1', 'emailaddress2', 'emailaddress3', 'jobtitle',
  'telephone1', 'telephone2', 'telephone3', 'mobilephone', 'fax', 'websiteurl', 'description',
  'address1_line1', 'address1_line2', 'address1_line3', 'address1_city', 'address1_stateorprovince', 'address1_postalcode',
  'address1_country', 'address1_county', 'donotphone', 'donotbulkemail', 'donotemail', 'donotfax', 'donotsendmm', 'donotpostalmail'
] as const

/** State 1 (Qualified) has the one status 3 (reference doc §7). */
const QUALIFIED_STATE = 1
const QUALIFIED_STATUSES = new Set([3])

export interface QualifyLeadParameters {
  readonly createAccount: boolean
  readonly createContact: boolean
  readonly createOpportunity: boolean
  readonly status: number
}

/** The action's body, or the 400 Dataverse answers for a missing or mistyped required parameter. */
export function readQualifyLeadParameters (body: unknown): QualifyLeadParameters {
  const object = (body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>
  for (const name of ['CreateAccount', 'CreateContact', 'CreateOpportunity']) {
    if (typeof object[name] !== 'boolean') throw queryError(`The parameter '${name}' of type 'Edm.Boolean' is required and was not given a Boolean value.`)
  }
  if (!Number.isInteger(object.Status)) throw queryError("The parameter 'Status' of type 'Edm.Int32' is required and was not given an Int32 value.")
  return { createAccount: object.CreateAccount as boolean, createContact: object.CreateContact as boolean, createOpportunity: object.CreateOpportunity as boolean, status: object.Status as number }
}

export interface QualifiedLead {
  /** `@odata.type` and key of each created record, as the action answers them. */
  readonly created: ReadonlyArray<Readonly<Record<string, string>>>
}

/** Applies the action to the store as `callerId`; throws Dataverse's error and writes nothing when refused. */
export function qualifyLead (store: DataverseRecordStore, leadId: string, parameters: QualifyLeadParameters, callerId: string): QualifiedLead {
  const lead = store.get('leads', leadId)
  if (lead === undefined) throw recordNotFound('lead', leadId)
  // (inferred) the wording of these refusals is not in the references; the codes are the generic InvalidArgument.
  if (lead.statecode !== 0) throw new DataverseError(400, '0x80040203', 'The lead is not open: only an open lead can be qualified.')
  if (!QUALIFIED_STATUSES.has(parameters.status)) throw new DataverseError(400, '0x80040203', `${parameters.status} is not a valid status code for state code LeadState.Qualified on lead with Id ${leadId}.`)
  if (parameters.createOpportunity) throw new DataverseError(501, '0x0', 'The emulator has no opportunity table: QualifyLead with CreateOpportunity is not emulated.')

  const authored: DataverseRecord = { _createdby_value: callerId, _modifiedby_value: callerId, _ownerid_value: lead._ownerid_value ?? callerId }
  const created: Array<Record<string, string>> = []
  let accountId: string | undefined
  if (parameters.createAccount) {
    accountId = store.insert('accounts', { name: typeof lead.companyname === 'string' ? lead.companyname : null, ...authored })
    created.push({ '@odata.type': '#Microsoft.Dynamics.CRM.account', accountid: accountId })
  }
  if (parameters.createContact) {
    const contact: DataverseRecord = { _originatingleadid_value: leadId, ...authored }
    for (const column of COPIED_TO_CONTACT) if (lead[column] !== undefined) contact[column] = lead[column]
    if (accountId !== undefined) contact._parentcustomerid_value = accountId
    const contactId = store.insert('contacts', contact)
    created.push({ '@odata.type': '#Microsoft.Dynamics.CRM.contact', contactid: contactId })
  }
  store.update('leads', leadId, { statecode: QUALIFIED_STATE, statuscode: parameters.status, _modifiedby_value: callerId })
  return { created }
}
