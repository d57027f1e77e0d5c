/**
 * Just enough `multipart/form-data` (RFC 7578) for Marketo's bulk import: the `file` part and
 * simple fields such as `format` and `lookupField` (reference "Bulk lead import"). Returns
 * undefined for a body that is not a well-formed multipart message, which Marketo answers with
 * 613 Invalid Multipart Request (reference §2.3).
 */

export interface MultipartPart {
  readonly name: string
  readonly filename?: string
  readonly content: string
}

export function boundaryOf (contentType: string): string | undefined {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
  return match?.[1] ?? match?.[2]
}

export function parseMultipartForm (body: string, boundary: string): MultipartPart[] | undefined {
  const delimiter = `--${boundary}`
  const sections = body.split(delimiter)
  // Before the first delimiter is a preamble; the last section must start with the closing `--`.
  if (sections.length < 3 || !sections.at(-1)!.startsWith('--')) return undefined
  const parts: MultipartPart[] = []
  for (const section of sections.slice(1, -1)) {
    const headerEnd = section.indexOf('\r\n\r\n')
    if (!section.startsWith('\r\n') || headerEnd === -1) return undefined
    const headers = section.slice(2, headerEnd)
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(headers)?.[1]
    const name = disposition === undefined ? undefined : /;\s*name="([^"]*)"/i.exec(disposition)?.[1]
    if (name === undefined) return undefined
    const filename = /;\s*filename="([^"]*)"/i.exec(disposition ?? '')?.[1]
    // The CRLF before the next delimiter belongs to the delimiter, not to the content.
    const content = section.slice(headerEnd + 4).replace(/\r\n$/, '')
    parts.push({ name, ...(filename === undefined ? {} : { filename }), content })
  }
  return parts
}
