import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { FieldMappingError, parseFieldMapping, type FieldMapping } from './field-mapping.ts'

/**
 * Marketo's documented default mapping, shipped inside src/ so the image carries it (the Dockerfile
 * copies src/). The one file read of the mapping; everything after it is pure (field-mapping.ts,
 * field-mapping-check.ts).
 */
export const DEFAULT_FIELD_MAPPING_FILE = fileURLToPath(new URL('./field-mapping.default.json', import.meta.url))

export function readFieldMappingFile (path: string): FieldMapping {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new FieldMappingError(path, [`cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'unknown error'}`])
  }
  return parseFieldMapping(text, path)
}
