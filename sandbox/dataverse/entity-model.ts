/**
 * The tables the Dataverse emulator serves and their columns. Only listed columns are accepted: a
 * write naming any other property fails the way Dataverse fails (400 `0x0`, reference doc §1.1/§6).
 *
 * Column lists = the lead/contact columns of reference doc §7 plus the Marketo connector's default
 * mapping (marketo-native-dynamics-sync.md §11), so a payload the product builds from that mapping is
 * accepted and a typo is not. Max lengths are the documented ones (§7); the `mkt_*` columns come
 * from the Marketo solution whose lengths are not documented: 100 for the short text columns and
 * 2000 for the description (assumed).
 */

export type ColumnType =
  | 'string'
  | 'integer'
  | 'bigint'
  | 'decimal'
  | 'boolean'
  | 'datetime'
  | 'guid'

export interface ColumnDefinition {
  readonly type: ColumnType
  readonly maxLength?: number
  /** Not settable through the API (computed or system-maintained); writes are ignored, as Dataverse ignores attributes that are not valid for create/update. */
  readonly readOnly?: boolean
  /**
   * The column's `AttributeType` in Dataverse's metadata where the wire type alone does not say it:
   * an option set travels as an integer but is a Picklist, State or Status; a Money or Memo column
   * as a decimal or a string (attribute-metadata.ts serves it).
   */
  readonly attributeType?: 'Memo' | 'Money' | 'Picklist' | 'State' | 'Status'
}

/** A single-valued navigation property written as `<navigationProperty>@odata.bind`. */
export interface LookupDefinition {
  readonly navigationProperty: string
  /** The `_x_value` column the lookup is read back through (e.g. `_ownerid_value`). */
  readonly valueColumn: string
  readonly targetEntitySet: string
}

export interface EntityDefinition {
  readonly entitySet: string
  /** `lead`, as in `Microsoft.Dynamics.CRM.lead` and in error messages. */
  readonly logicalName: string
  readonly primaryKey: string
  readonly columns: Readonly<Record<string, ColumnDefinition>>
  readonly lookups: readonly LookupDefinition[]
  /** Whether `fullname` is computed from firstname + lastname (lead, contact, systemuser). */
  readonly computesFullname: boolean
  /** User-owned tables get `_ownerid_value`, defaulting to the calling user. */
  readonly userOwned: boolean
  /** Column values a new row gets when the payload does not name them. */
  readonly defaults: Readonly<Record<string, unknown>>
  /**
   * Whether `Prefer: odata.track-changes` is honoured (EntityMetadata.ChangeTrackingEnabled,
   * reference doc §2). On for lead and contact, the tables the sync reads; an emulator option can
   * switch it off to exercise the sync's `modifiedon` fallback.
   */
  readonly changeTracking: boolean
}

const text = (maxLength: number): ColumnDefinition => ({ type: 'string', maxLength })
const integer: ColumnDefinition = { type: 'integer' }
const boolean: ColumnDefinition = { type: 'boolean' }
const datetime: ColumnDefinition = { type: 'datetime' }
const readOnlyDatetime: ColumnDefinition = { type: 'datetime', readOnly: true }
const readOnlyGuid: ColumnDefinition = { type: 'guid', readOnly: true }
const memo = (maxLength: number): ColumnDefinition => ({ type: 'string', maxLength, attributeType: 'Memo' })
const money: ColumnDefinition = { type: 'decimal', attributeType: 'Money' }
const picklist: ColumnDefinition = { type: 'integer', attributeType: 'Picklist' }
const state: ColumnDefinition = { type: 'integer', attributeType: 'State' }
const status: ColumnDefinition = { type: 'integer', attributeType: 'Status' }

const ADDRESS1_COLUMNS: Record<string, ColumnDefinition> = {
  address1_line1: text(250),
  address1_line2: text(250),
  address1_line3: text(250),
  address1_city: text(80),
  address1_stateorprovince: text(50),
  address1_postalcode: text(20),
  address1_country: text(80),
  address1_county: text(50),
  address1_composite: { type: 'string', maxLength: 1000, readOnly: true }
}

const SYSTEM_COLUMNS: Record<string, ColumnDefinition> = {
  createdon: readOnlyDatetime,
  modifiedon: readOnlyDatetime,
  // The systemuser who created / last wrote the row: the calling (or impersonated) user (§2; the
  // sync tells its own writes from people's by `_modifiedby_value` = WhoAmI's UserId).
  _createdby_value: readOnlyGuid,
  _modifiedby_value: readOnlyGuid,
  versionnumber: { type: 'bigint', readOnly: true }
}

const OWNER_LOOKUPS: LookupDefinition[] = [
  { navigationProperty: 'ownerid', valueColumn: '_ownerid_value', targetEntitySet: 'systemusers' }
]

/** Columns lead and contact share (the "same core fields" of the mapping doc §11). */
const PERSON_COLUMNS: Record<string, ColumnDefinition> = {
  salutation: text(100),
  firstname: text(50),
  middlename: text(50),
  lastname: text(50),
  fullname: { type: 'string', maxLength: 160, readOnly: true },
  emailaddress1: text(100),
  emailaddress2: text(100),
  emailaddress3: text(100),
  jobtitle: text(100),
  telephone1: text(50),
  telephone2: text(50),
  telephone3: text(50),
  mobilephone: text(20),
  fax: text(50),
  websiteurl: text(200),
  ...ADDRESS1_COLUMNS,
  description: memo(2000),
  statecode: state,
  statuscode: status,
  preferredcontactmethodcode: picklist,
  donotphone: boolean,
  donotbulkemail: boolean,
  donotemail: boolean,
  donotfax: boolean,
  donotsendmm: boolean,
  donotpostalmail: boolean,
  mkt_lastinterestingmomentdate: datetime,
  mkt_lastinterestingmomentdesc: text(2000),
  mkt_leadinterestingmomentsource: text(100),
  mkt_lastinterestingmomenttype: text(100),
  mkt_relativescore: integer,
  mkt_priority: integer,
  mkt_urgency: integer,
  // The native sync's filter (marketo-native-dynamics-sync.md §5): a custom Two Options column an org
  // adds itself, here on both person tables so the sandbox can show it. No default: a row that never
  // had it set reads null, "Field is empty".
  new_synctomkto: boolean,
  _ownerid_value: readOnlyGuid,
  ...SYSTEM_COLUMNS
}

const PERSON_DEFAULTS = {
  statecode: 0,
  statuscode: 1,
  preferredcontactmethodcode: 1,
  donotphone: false,
  donotbulkemail: false,
  donotemail: false,
  donotfax: false,
  donotsendmm: false,
  donotpostalmail: false
}

const lead: EntityDefinition = {
  entitySet: 'leads',
  logicalName: 'lead',
  primaryKey: 'leadid',
  columns: {
    leadid: { type: 'guid' },
    ...PERSON_COLUMNS,
    subject: text(300),
    companyname: text(100),
    leadsourcecode: picklist,
    leadqualitycode: picklist,
    revenue: money,
    numberofemployees: integer,
    industrycode: picklist,
    _parentaccountid_value: readOnlyGuid,
    _parentcontactid_value: readOnlyGuid,
    _customerid_value: readOnlyGuid
  },
  lookups: [
    ...OWNER_LOOKUPS,
    { navigationProperty: 'parentaccountid', valueColumn: '_parentaccountid_value', targetEntitySet: 'accounts' },
    { navigationProperty: 'parentcontactid', valueColumn: '_parentcontactid_value', targetEntitySet: 'contacts' },
    // Customer-type lookups have one navigation property per target table (reference doc §1.3).
    { navigationProperty: 'customerid_account', valueColumn: '_customerid_value', targetEntitySet: 'accounts' },
    { navigationProperty: 'customerid_contact', valueColumn: '_customerid_value', targetEntitySet: 'contacts' }
  ],
  computesFullname: true,
  userOwned: true,
  defaults: { ...PERSON_DEFAULTS, leadqualitycode: 2 },
  changeTracking: true
}

const contact: EntityDefinition = {
  entitySet: 'contacts',
  logicalName: 'contact',
  primaryKey: 'contactid',
  columns: {
    contactid: { type: 'guid' },
    ...PERSON_COLUMNS,
    mkt_leadscore: integer,
    _parentcustomerid_value: readOnlyGuid,
    // The lead a contact was qualified from (QualifyLead sets it; contact's `originatingleadid` lookup).
    _originatingleadid_value: readOnlyGuid
  },
  lookups: [
    ...OWNER_LOOKUPS,
    { navigationProperty: 'parentcustomerid_account', valueColumn: '_parentcustomerid_value', targetEntitySet: 'accounts' },
    { navigationProperty: 'parentcustomerid_contact', valueColumn: '_parentcustomerid_value', targetEntitySet: 'contacts' },
    { navigationProperty: 'originatingleadid', valueColumn: '_originatingleadid_value', targetEntitySet: 'leads' }
  ],
  computesFullname: true,
  userOwned: true,
  defaults: PERSON_DEFAULTS,
  changeTracking: true
}

const account: EntityDefinition = {
  entitySet: 'accounts',
  logicalName: 'account',
  primaryKey: 'accountid',
  columns: {
    accountid: { type: 'guid' },
    name: text(160),
    accountnumber: text(20),
    telephone1: text(50),
    websiteurl: text(200),
    ...ADDRESS1_COLUMNS,
    description: memo(2000),
    revenue: money,
    numberofemployees: integer,
    industrycode: picklist,
    businesstypecode: picklist,
    sic: text(20),
    statecode: state,
    statuscode: status,
    _ownerid_value: readOnlyGuid,
    ...SYSTEM_COLUMNS
  },
  lookups: OWNER_LOOKUPS,
  computesFullname: false,
  userOwned: true,
  defaults: { statecode: 0, statuscode: 1 },
  changeTracking: false
}

const systemuser: EntityDefinition = {
  entitySet: 'systemusers',
  logicalName: 'systemuser',
  primaryKey: 'systemuserid',
  columns: {
    systemuserid: { type: 'guid' },
    firstname: text(64),
    lastname: text(64),
    fullname: { type: 'string', maxLength: 200, readOnly: true },
    internalemailaddress: text(100),
    domainname: text(1024),
    isdisabled: boolean,
    // 0 Read-Write, 1 Administrative, 2 Read, 3 Support User, 4 Non-interactive, 5 Delegated Admin.
    accessmode: integer,
    azureactivedirectoryobjectid: { type: 'guid' },
    applicationid: { type: 'guid' },
    ...SYSTEM_COLUMNS
  },
  lookups: [],
  computesFullname: true,
  userOwned: false,
  defaults: { isdisabled: false, accessmode: 0 },
  changeTracking: false
}

export const ENTITY_DEFINITIONS: readonly EntityDefinition[] = [lead, contact, account, systemuser]

export function findEntityDefinition (entitySet: string): EntityDefinition | undefined {
  return ENTITY_DEFINITIONS.find((definition) => definition.entitySet === entitySet)
}
