import { DataverseError, invalidPayload } from './dataverse-error.ts'
import type { EntityDefinition } from './entity-model.ts'
import type { DataverseRecord } from './record-store.ts'

/**
 * The `UpdateMultiple` bulk message (reference doc §4; learn.microsoft.com "Use bulk operation
 * messages", PAD `bulk-operations.md`): `POST {set}/Microsoft.Dynamics.CRM.UpdateMultiple` with
 * `{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.lead","leadid":"…",…}]}`, answered `204`.
 *
 * On a standard table the request is one transaction: "any error that occurs in a bulk operation
 * with a standard table causes the entire operation to roll back". So every target is checked here,
 * before anything is written; the emulator applies the plan only when it returns.
 *
 * Count: "there's no set limit on the number of records" on standard tables, only message size and
 * time limits; the emulator's only size limit is its 16 MB request body (413).
 */

/** The tables whose `UpdateMultiple` the emulator serves: lead and contact list it (reference doc §4). */
export const BULK_MESSAGE_TABLES: ReadonlySet<string> = new Set(['leads', 'contacts'])

export interface PlannedUpdate {
  readonly id: string
  readonly changes: DataverseRecord
}

export interface UpdateMultipleChecks {
  readonly definition: EntityDefinition
  /** Reads one target's columns as a PATCH would (record-payload.ts), throwing Dataverse's error. */
  readonly readColumns: (target: Record<string, unknown>) => DataverseRecord
  readonly rowExists: (id: string) => boolean
}

const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/

/** Every target's update, or the first reason Dataverse would refuse the whole request. */
export function planUpdateMultiple (body: unknown, checks: UpdateMultipleChecks): PlannedUpdate[] {
  const { definition } = checks
  const targets = (body !== null && typeof body === 'object' && !Array.isArray(body))
    ? (body as { Targets?: unknown }).Targets
    : undefined
  if (!Array.isArray(targets)) {
    // Shape of the message inferred: OData's complaint about a missing action parameter.
    throw invalidPayload(definition.entitySet, "Microsoft.OData.ODataException: The parameter 'Targets' in the request payload is not a valid parameter for the operation 'UpdateMultiple'.")
  }
  const expectedType = `Microsoft.Dynamics.CRM.${definition.logicalName}`
  const planned: PlannedUpdate[] = []
  const missing: string[] = []
  for (const target of targets) {
    if (target === null || typeof target !== 'object' || Array.isArray(target)) {
      throw invalidPayload(definition.entitySet, 'Microsoft.OData.ODataException: Each item of Targets must be an entity object.')
    }
    const item = target as Record<string, unknown>
    // "You must set the @odata.type property for each item in the Targets parameter" (bulk-operations.md);
    // the wording of the refusal is the emulator's (inferred).
    const odataType = item['@odata.type']
    if (odataType !== expectedType) {
      throw invalidPayload(definition.entitySet, odataType === undefined
        ? `Microsoft.OData.ODataException: An item of Targets has no '@odata.type' annotation; '${expectedType}' is required.`
        : `Microsoft.OData.ODataException: The '@odata.type' '${String(odataType)}' of an item of Targets is not '${expectedType}'.`)
    }
    const key = item[definition.primaryKey]
    const id = typeof key === 'string' ? GUID.exec(key.trim())?.[1]?.toLowerCase() : undefined
    if (id === undefined) {
      // The SDK's message for an Update without its id; code InvalidArgument (inferred).
      throw new DataverseError(400, '0x80040203', 'Entity Id must be specified for Update')
    }
    const changes = checks.readColumns(item)
    delete changes[definition.primaryKey]
    if (!checks.rowExists(id)) missing.push(id)
    planned.push({ id, changes })
  }
  if (missing.length > 0) {
    // "Contact With Ids = <guid> Do Not Exist" (bulk-operations.md, troubleshooting); 404 as the
    // single-row ObjectDoesNotExist (inferred).
    throw new DataverseError(404, '0x80040217', `${schemaName(definition)} With Ids = ${missing.join(', ')} Do Not Exist`)
  }
  return planned
}

function schemaName (definition: EntityDefinition): string {
  return definition.logicalName.charAt(0).toUpperCase() + definition.logicalName.slice(1)
}
