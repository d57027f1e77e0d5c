import type { FieldMapping, SyncTable } from './field-mapping.ts'

/**
 * Option-set columns travel as labels (issue 12; field-mapping-check.ts: a Marketo `string` pairs
 * with a Dataverse Picklist, State or Status column, "the option's label is what travels"). Dataverse
 * answers the label of a read's option-set value as its
 * `<column>@OData.Community.Display.V1.FormattedValue` annotation when asked with
 * `Prefer: odata.include-annotations="OData.Community.Display.V1.FormattedValue"`
 * (dataverse-web-api-and-msal.md; learn.microsoft.com "Formatted values"). Pure functions, no I/O.
 */

export const FORMATTED_VALUE_ANNOTATION = 'OData.Community.Display.V1.FormattedValue'

/**
 * The columns of `table` whose label, not their value, goes to Marketo: those mapped to a Marketo
 * `string`. The start-up check lets a Marketo string pair only with a text or an option-set column,
 * and Dataverse annotates no text column, so a formatted value on one of these is an option's label;
 * the formatted values of money, dates or numbers (mapped to other Marketo types) are never used.
 */
export function labelledColumns (mapping: FieldMapping, table: SyncTable): Set<string> {
  const columns = new Set<string>()
  for (const entry of mapping.fields) {
    const column = entry[table]
    if (column !== null && entry.dataType === 'string') columns.add(column)
  }
  return columns
}

/** The FormattedValue annotations of a row, by column. */
export function formattedValuesOf (row: Readonly<Record<string, unknown>>): Record<string, string> {
  const labels: Record<string, string> = {}
  const suffix = `@${FORMATTED_VALUE_ANNOTATION}`
  for (const [key, value] of Object.entries(row)) {
    if (key.endsWith(suffix) && typeof value === 'string') labels[key.slice(0, -suffix.length)] = value
  }
  return labels
}

/** One option of an option-set column, as its metadata's `OptionSet.Options` lists it. */
export interface OptionSetOption {
  readonly value: number
  readonly label: string
}

/** The options of a table's option-set columns, by column. */
export type OptionSets = Readonly<Record<string, readonly OptionSetOption[]>>

/** The code a record is refused with when Marketo holds a label the column has no option for. */
export const UNKNOWN_OPTION_LABEL = 'OPTION_LABEL_UNKNOWN'

/** The label of an option value; undefined for a value the column has no option for. */
export function labelOf (options: readonly OptionSetOption[], value: number): string | undefined {
  return options.find((option) => option.value === value)?.label
}

/**
 * The option value of a Marketo label: the option with that very label, else the one whose label
 * equals it but for case and surrounding spaces (Marketo users type these), when only one does.
 * Undefined: no option, and the record is refused rather than written with a guess.
 */
export function optionValueOf (options: readonly OptionSetOption[], label: string): number | undefined {
  const exact = options.find((option) => option.label === label)
  if (exact !== undefined) return exact.value
  const folded = label.trim().toLowerCase()
  const loose = options.filter((option) => option.label.trim().toLowerCase() === folded)
  return loose.length === 1 ? loose[0]!.value : undefined
}
