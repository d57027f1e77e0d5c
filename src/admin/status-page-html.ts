/**
 * HTML for the status page (src/admin/status-page.ts), escaped at the one place values meet markup.
 * Values shown there come from Redis and the outside systems (a Dynamics error code, a feed name), so
 * every interpolated value is escaped unless it is markup this module built itself: a forgotten
 * escape cannot happen in a template, only a deliberate `SafeHtml`.
 */

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text as HTML text or a quoted attribute value (both quote characters too: attributes may use either). */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character)
}

/** Markup already escaped; only `html` makes one. */
export class SafeHtml {
  readonly #markup: string
  constructor (markup: string, token: symbol) {
    if (token !== BUILT_HERE) throw new TypeError('SafeHtml is made by the html template only')
    this.#markup = markup
  }

  toString (): string { return this.#markup }
}

const BUILT_HERE = Symbol('SafeHtml')

export type HtmlValue = string | number | boolean | null | undefined | SafeHtml | readonly HtmlValue[]

/**
 * A template literal tag: `html\`<td>${code}</td>\``. Strings and numbers are escaped; undefined,
 * null and false render nothing; arrays are joined (each item escaped); a SafeHtml is kept as is.
 */
export function html (strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let markup = strings[0] ?? ''
  values.forEach((value, index) => { markup += render(value) + (strings[index + 1] ?? '') })
  return new SafeHtml(markup, BUILT_HERE)
}

function render (value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.toString()
  if (Array.isArray(value)) return value.map((item: HtmlValue) => render(item)).join('')
  if (value === undefined || value === null || value === false) return ''
  return escapeHtml(String(value))
}
