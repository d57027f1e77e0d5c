/**
 * The flat files bulk import reads: comma (`csv`), tab (`tsv`) or semicolon (`ssv`) separated,
 * first row a header of REST field names (reference "Bulk lead import"). Quoted values may hold
 * the delimiter, quotes doubled, and line breaks (RFC 4180).
 */

export const BULK_FILE_DELIMITERS = { csv: ',', tsv: '\t', ssv: ';' } as const
export type BulkFileFormat = keyof typeof BULK_FILE_DELIMITERS

export function isBulkFileFormat (value: string): value is BulkFileFormat {
  return Object.hasOwn(BULK_FILE_DELIMITERS, value)
}

export function parseDelimitedRows (text: string, delimiter: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let value = ''
  let quoted = false
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        value += '"'
        index++
      } else if (char === '"') {
        quoted = false
      } else {
        value += char
      }
    } else if (char === '"' && value === '') {
      quoted = true
    } else if (char === delimiter) {
      row.push(value)
      value = ''
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[index + 1] === '\n') index++
      row.push(value)
      rows.push(row)
      row = []
      value = ''
    } else {
      value += char
    }
  }
  if (value !== '' || row.length > 0) {
    row.push(value)
    rows.push(row)
  }
  return rows.filter((cells) => !(cells.length === 1 && cells[0] === ''))
}

/** One row back into the file's format, quoting where needed (the failures and warnings files). */
export function formatDelimitedRow (cells: readonly string[], delimiter: string): string {
  return cells.map((cell) => /["\r\n]/.test(cell) || cell.includes(delimiter) ? `"${cell.replaceAll('"', '""')}"` : cell).join(delimiter)
}
