/**
 * TypeBox emits JSON Schema 2020-12 idioms (`const`, `{type: 'null'}` in unions) that OpenAPI 3.0
 * — the dialect of Adobe's SSFS sample and, as far as anyone knows, of Marketo's importer — does
 * not have. This rewrites a schema tree into the 3.0 equivalents (`enum`, `nullable`).
 */
type JsonSchema = Record<string, unknown>

export function toOpenApi30Schema (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toOpenApi30Schema)
  if (schema === null || typeof schema !== 'object') return schema
  const source = schema as JsonSchema
  const out: JsonSchema = {}
  for (const [key, value] of Object.entries(source)) {
    if (key === '$id') continue
    out[key] = toOpenApi30Schema(value)
  }
  if ('const' in out) {
    out.enum = [out.const]
    out.type ??= typeof out.const
    delete out.const
  }
  const anyOf = out.anyOf as JsonSchema[] | undefined
  if (Array.isArray(anyOf)) {
    const nonNull = anyOf.filter((member) => member.type !== 'null')
    if (nonNull.length < anyOf.length) out.nullable = true
    const allEnums = nonNull.every((member) => Array.isArray(member.enum) && member.type === nonNull[0]?.type)
    if (allEnums && nonNull.length > 0) {
      delete out.anyOf
      out.type = nonNull[0]?.type
      out.enum = nonNull.flatMap((member) => member.enum as unknown[])
    } else if (nonNull.length === 1) {
      delete out.anyOf
      Object.assign(out, nonNull[0])
    } else {
      out.anyOf = nonNull
    }
  }
  return out
}
