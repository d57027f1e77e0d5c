import { readFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { readPersonTableSchemas } from '../dynamics/attribute-metadata.ts'
import { FieldMappingError, parseFieldMapping, type FieldMapping } from '../sync/field-mapping.ts'
import { assertFieldMappingMatchesSchemas, type FieldMappingWarning, type MarketoFieldDescription } from '../sync/field-mapping-check.ts'

/**
 * The background sync's start-up check (issue 12 §4): read the mapping file, fetch Marketo's
 * describe and the Dataverse attribute metadata of lead and contact, and stop start-up with every
 * problem named before any poller runs; a field that would only fail person by person later is
 * found here once. Warnings (values Dataverse may find too long) are logged, not fatal. The
 * decisions are `checkFieldMapping`'s (src/sync/field-mapping-check.ts); this is only its I/O.
 */

export interface FieldMappingStartupCheckOptions {
  readonly marketo: { describeLeads: () => Promise<readonly MarketoFieldDescription[]> }
  readonly dataverse: DataverseClient
  /** SYNC_FIELD_MAPPING_FILE. */
  readonly mappingFile: string
  readonly logger: Logger
}

export interface CheckedFieldMapping {
  readonly mapping: FieldMapping
  readonly warnings: readonly FieldMappingWarning[]
}

/**
 * Throws FieldMappingError when the file cannot be read or is not a valid mapping, and
 * FieldMappingMismatchError (code FIELD_MAPPING_MISMATCH) listing every field that does not match
 * Marketo's or Dataverse's schema; Marketo and Dataverse errors pass through with their own codes.
 */
export async function checkFieldMappingAtStartup (options: FieldMappingStartupCheckOptions): Promise<CheckedFieldMapping> {
  const { mappingFile, logger } = options
  const text = await readFile(mappingFile, 'utf8').catch((error: unknown) => {
    throw new FieldMappingError(mappingFile, [`cannot be read: ${(error as Error).message}`])
  })
  // The file first: a mapping that is not even valid costs no call against Marketo's daily budget.
  const mapping = parseFieldMapping(text, mappingFile)
  const [marketoFields, dataverseSchema] = await Promise.all([
    options.marketo.describeLeads(),
    readPersonTableSchemas(options.dataverse)
  ])
  const warnings = assertFieldMappingMatchesSchemas(mapping, marketoFields, dataverseSchema)
  for (const warning of warnings) {
    // Field and column names only: the check reads schemas, never a person's values.
    logger.warn({ mappingFile, kind: warning.kind, marketoField: warning.marketoField, table: warning.table, column: warning.column }, warning.message)
  }
  logger.info({ mappingFile, fields: mapping.fields.length, warnings: warnings.length }, 'field mapping matches Marketo and Dataverse')
  return { mapping, warnings }
}
