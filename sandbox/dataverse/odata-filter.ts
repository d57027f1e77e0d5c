/**
 * The `$filter` subset Dataverse clients use (reference doc §1.10): comparisons `eq ne gt ge lt le`,
 * `and or not`, parentheses, `contains/startswith/endswith`, literals for strings (`''` escapes a
 * quote), numbers, booleans, null, unquoted GUIDs and unquoted ISO datetimes. String comparison is
 * case-insensitive, as in Dataverse. Not supported: lookup traversal (`a/b`), lambdas, the
 * `Microsoft.Dynamics.CRM.*` query functions and LIKE wildcards inside string functions.
 */

export type FilterLiteral =
  | { readonly kind: 'string', readonly value: string }
  | { readonly kind: 'number', readonly value: number }
  | { readonly kind: 'boolean', readonly value: boolean }
  | { readonly kind: 'null' }
  | { readonly kind: 'guid', readonly value: string }
  | { readonly kind: 'datetime', readonly value: number }

export type ComparisonOperator = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le'
export type StringFunction = 'contains' | 'startswith' | 'endswith'

export type FilterExpression =
  | { readonly kind: 'literal', readonly literal: FilterLiteral }
  | { readonly kind: 'property', readonly name: string }
  | { readonly kind: 'compare', readonly operator: ComparisonOperator, readonly left: FilterExpression, readonly right: FilterExpression }
  | { readonly kind: 'and' | 'or', readonly left: FilterExpression, readonly right: FilterExpression }
  | { readonly kind: 'not', readonly operand: FilterExpression }
  | { readonly kind: 'function', readonly name: StringFunction, readonly args: readonly [FilterExpression, FilterExpression] }

export class FilterSyntaxError extends Error {
  readonly code = 'ODATA_FILTER_SYNTAX'
  constructor (message: string, readonly position: number) {
    super(message)
    this.name = 'FilterSyntaxError'
  }
}

type Token =
  | { readonly type: 'literal', readonly literal: FilterLiteral, readonly position: number }
  | { readonly type: 'identifier', readonly name: string, readonly position: number }
  | { readonly type: '(' | ')' | ',', readonly position: number }
  | { readonly type: 'end', readonly position: number }

const DATETIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?(?![\w:.-])/
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\w-])/i
const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?![\w.])/
const IDENTIFIER = /^[A-Za-z_][\w.]*/

function tokenize (source: string): Token[] {
  const tokens: Token[] = []
  let index = 0
  while (index < source.length) {
    const rest = source.slice(index)
    const char = source[index]
    if (char === ' ' || char === '\t' || char === '\n' || char === '\r') {
      index += 1
      continue
    }
    if (char === '(' || char === ')' || char === ',') {
      tokens.push({ type: char, position: index })
      index += 1
      continue
    }
    if (char === "'") {
      let value = ''
      let cursor = index + 1
      for (;;) {
        if (cursor >= source.length) throw new FilterSyntaxError(`Unterminated string literal at position ${index}.`, index)
        if (source[cursor] === "'") {
          if (source[cursor + 1] === "'") {
            value += "'"
            cursor += 2
            continue
          }
          break
        }
        value += source[cursor]
        cursor += 1
      }
      tokens.push({ type: 'literal', literal: { kind: 'string', value }, position: index })
      index = cursor + 1
      continue
    }
    const datetime = DATETIME.exec(rest)
    if (datetime !== null) {
      const text = datetime[0]
      const value = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text)
      if (Number.isNaN(value)) throw new FilterSyntaxError(`Invalid datetime literal '${text}' at position ${index}.`, index)
      tokens.push({ type: 'literal', literal: { kind: 'datetime', value }, position: index })
      index += text.length
      continue
    }
    const guid = GUID.exec(rest)
    if (guid !== null) {
      tokens.push({ type: 'literal', literal: { kind: 'guid', value: guid[0].toLowerCase() }, position: index })
      index += guid[0].length
      continue
    }
    const number = NUMBER.exec(rest)
    if (number !== null) {
      tokens.push({ type: 'literal', literal: { kind: 'number', value: Number.parseFloat(number[0]) }, position: index })
      index += number[0].length
      continue
    }
    const identifier = IDENTIFIER.exec(rest)
    if (identifier !== null) {
      const name = identifier[0]
      if (name === 'true' || name === 'false') {
        tokens.push({ type: 'literal', literal: { kind: 'boolean', value: name === 'true' }, position: index })
      } else if (name === 'null') {
        tokens.push({ type: 'literal', literal: { kind: 'null' }, position: index })
      } else {
        tokens.push({ type: 'identifier', name, position: index })
      }
      index += name.length
      continue
    }
    throw new FilterSyntaxError(`Syntax error: character '${char ?? ''}' is not valid at position ${index}.`, index)
  }
  tokens.push({ type: 'end', position: source.length })
  return tokens
}

const COMPARISON_OPERATORS = new Set<string>(['eq', 'ne', 'gt', 'ge', 'lt', 'le'])
const STRING_FUNCTIONS = new Set<string>(['contains', 'startswith', 'endswith'])

/** Recursive descent, lowest precedence first: or → and → not → comparison → primary. */
export function parseFilter (source: string): FilterExpression {
  const tokens = tokenize(source)
  let cursor = 0
  const peek = (): Token => tokens[cursor] ?? { type: 'end', position: source.length }
  const next = (): Token => {
    const token = peek()
    cursor += 1
    return token
  }
  const isKeyword = (token: Token, keyword: string): boolean => token.type === 'identifier' && token.name === keyword
  const expect = (type: '(' | ')' | ','): void => {
    const token = next()
    if (token.type !== type) throw new FilterSyntaxError(`Syntax error: '${type}' expected at position ${token.position}.`, token.position)
  }

  function parseOr (): FilterExpression {
    let left = parseAnd()
    while (isKeyword(peek(), 'or')) {
      next()
      left = { kind: 'or', left, right: parseAnd() }
    }
    return left
  }

  function parseAnd (): FilterExpression {
    let left = parseNot()
    while (isKeyword(peek(), 'and')) {
      next()
      left = { kind: 'and', left, right: parseNot() }
    }
    return left
  }

  function parseNot (): FilterExpression {
    if (isKeyword(peek(), 'not')) {
      next()
      return { kind: 'not', operand: parseNot() }
    }
    return parseComparison()
  }

  function parseComparison (): FilterExpression {
    const left = parsePrimary()
    const token = peek()
    if (token.type === 'identifier' && COMPARISON_OPERATORS.has(token.name)) {
      next()
      return { kind: 'compare', operator: token.name as ComparisonOperator, left, right: parsePrimary() }
    }
    return left
  }

  function parsePrimary (): FilterExpression {
    const token = next()
    if (token.type === '(') {
      const inner = parseOr()
      expect(')')
      return inner
    }
    if (token.type === 'literal') return { kind: 'literal', literal: token.literal }
    if (token.type === 'identifier') {
      if (peek().type === '(') {
        if (!STRING_FUNCTIONS.has(token.name)) {
          throw new FilterSyntaxError(`An unknown function with name '${token.name}' was found.`, token.position)
        }
        next()
        const first = parseOr()
        expect(',')
        const second = parseOr()
        expect(')')
        return { kind: 'function', name: token.name as StringFunction, args: [first, second] }
      }
      if (token.name.includes('/') || token.name.includes('.')) {
        throw new FilterSyntaxError(`Property paths are not supported by the emulator: '${token.name}'.`, token.position)
      }
      return { kind: 'property', name: token.name }
    }
    throw new FilterSyntaxError(`Syntax error: expression expected at position ${token.position}.`, token.position)
  }

  const expression = parseOr()
  const trailing = peek()
  if (trailing.type !== 'end') {
    throw new FilterSyntaxError(`Syntax error at position ${trailing.position} in '${source}'.`, trailing.position)
  }
  return expression
}

/**
 * When every row a filter matches must have one property equal to one of a few strings (an `or`
 * of `eq` comparisons, possibly `and`-ed with more conditions), that property and the strings,
 * lower-cased as `eq` compares them; otherwise undefined. Lets a query skip most rows with one set
 * look-up instead of evaluating a 40-way `or` on each: the look-ups by email the flow step sends.
 */
export function equalityCandidates (expression: FilterExpression): { readonly property: string, readonly values: ReadonlySet<string> } | undefined {
  switch (expression.kind) {
    case 'compare': {
      if (expression.operator !== 'eq') return undefined
      const [property, literal] = expression.left.kind === 'property' ? [expression.left, expression.right] : [expression.right, expression.left]
      if (property.kind !== 'property' || literal.kind !== 'literal' || literal.literal.kind !== 'string') return undefined
      // A string that reads as a time compares as a time with a datetime column: leave it to evaluation.
      if (!Number.isNaN(Date.parse(literal.literal.value))) return undefined
      return { property: property.name, values: new Set([literal.literal.value.toLowerCase()]) }
    }
    case 'or': {
      const left = equalityCandidates(expression.left)
      const right = equalityCandidates(expression.right)
      if (left === undefined || right === undefined || left.property !== right.property) return undefined
      return { property: left.property, values: new Set([...left.values, ...right.values]) }
    }
    case 'and': return equalityCandidates(expression.left) ?? equalityCandidates(expression.right)
    default: return undefined
  }
}

/** Every property a filter names, so the caller can reject unknown columns before evaluating. */
export function filterProperties (expression: FilterExpression): string[] {
  switch (expression.kind) {
    case 'property': return [expression.name]
    case 'literal': return []
    case 'not': return filterProperties(expression.operand)
    case 'function': return expression.args.flatMap(filterProperties)
    default: return [...filterProperties(expression.left), ...filterProperties(expression.right)]
  }
}

type Value = string | number | boolean | null

/** What a property or literal evaluates to, remembering whether it is a datetime so comparisons use time order. */
interface TypedValue {
  readonly value: Value
  readonly datetime: boolean
}

const ISO_DATETIME_VALUE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/

function evaluateOperand (expression: FilterExpression, record: Readonly<Record<string, unknown>>): TypedValue {
  switch (expression.kind) {
    case 'literal': {
      const literal = expression.literal
      if (literal.kind === 'null') return { value: null, datetime: false }
      return { value: literal.value, datetime: literal.kind === 'datetime' }
    }
    case 'property': {
      const raw = record[expression.name]
      if (raw === undefined || raw === null) return { value: null, datetime: false }
      if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') {
        return { value: raw, datetime: typeof raw === 'string' && ISO_DATETIME_VALUE.test(raw) }
      }
      return { value: String(raw), datetime: false }
    }
    default:
      return { value: evaluateCondition(expression, record), datetime: false }
  }
}

function compare (operator: ComparisonOperator, left: TypedValue, right: TypedValue): boolean {
  if (left.value === null || right.value === null) {
    // SQL semantics as Dataverse applies them: null only equals null; ordering with null is false.
    if (operator === 'eq') return left.value === right.value
    if (operator === 'ne') return left.value !== right.value
    return false
  }
  let a: string | number | boolean = left.value
  let b: string | number | boolean = right.value
  if (left.datetime || right.datetime) {
    a = typeof a === 'string' ? Date.parse(a) : a
    b = typeof b === 'string' ? Date.parse(b) : b
  } else if (typeof a === 'string' && typeof b === 'string') {
    a = a.toLowerCase()
    b = b.toLowerCase()
  } else if (typeof a === 'string' && typeof b === 'number') {
    a = Number(a)
  } else if (typeof a === 'number' && typeof b === 'string') {
    b = Number(b)
  }
  switch (operator) {
    case 'eq': return a === b
    case 'ne': return a !== b
    case 'gt': return a > b
    case 'ge': return a >= b
    case 'lt': return a < b
    case 'le': return a <= b
  }
}

export function evaluateCondition (expression: FilterExpression, record: Readonly<Record<string, unknown>>): boolean {
  switch (expression.kind) {
    case 'and': return evaluateCondition(expression.left, record) && evaluateCondition(expression.right, record)
    case 'or': return evaluateCondition(expression.left, record) || evaluateCondition(expression.right, record)
    case 'not': return !evaluateCondition(expression.operand, record)
    case 'compare': return compare(expression.operator, evaluateOperand(expression.left, record), evaluateOperand(expression.right, record))
    case 'function': {
      const haystack = evaluateOperand(expression.args[0], record).value
      const needle = evaluateOperand(expression.args[1], record).value
      if (haystack === null || needle === null) return false
      const h = String(haystack).toLowerCase()
      const n = String(needle).toLowerCase()
      if (expression.name === 'contains') return h.includes(n)
      if (expression.name === 'startswith') return h.startsWith(n)
      return h.endsWith(n)
    }
    case 'literal': return expression.literal.kind === 'boolean' && expression.literal.value
    case 'property': return record[expression.name] === true
  }
}
