import t from 'tap'
import { charsetOf, exceedsJsonNesting, nestsDeeperThan } from '../../src/http/json-body-parser.ts'

t.test('nesting is counted in objects and arrays, not inside strings', async (t) => {
  t.notOk(exceedsJsonNesting('{"a":{"b":[1,2,{"c":3}]}}', 4))
  t.ok(exceedsJsonNesting('{"a":{"b":[1,2,{"c":3}]}}', 3))
  t.notOk(exceedsJsonNesting(`{"s":"${'['.repeat(1000)}"}`, 2), 'brackets in a string do not count')
  t.notOk(exceedsJsonNesting(`{"s":"a\\"${'{'.repeat(100)}\\\\"}`, 2), 'escaped quotes do not end the string early')
  t.ok(exceedsJsonNesting(`{"s":"a\\\\"${',{'.repeat(100)}`, 2), 'an escaped backslash does end it')
  t.ok(exceedsJsonNesting('['.repeat(1_000_000), 64), 'a million levels, without recursion')
  t.notOk(exceedsJsonNesting('{"unterminated', 1), 'invalid JSON is left to the parser')
})

t.test('a parsed value is measured without recursion, objects and arrays alike', async (t) => {
  t.notOk(nestsDeeperThan(JSON.parse('{"a":{"b":[1,2,{"c":3}]}}'), 4))
  t.ok(nestsDeeperThan(JSON.parse('{"a":{"b":[1,2,{"c":3}]}}'), 3))
  t.notOk(nestsDeeperThan(JSON.parse('[[1],[2],{"x":[3]}]'), 3), 'siblings do not add up')
  t.notOk(nestsDeeperThan('a string', 0))
  t.notOk(nestsDeeperThan(null, 0))
  t.ok(nestsDeeperThan(JSON.parse(`${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}`), 64), 'two hundred thousand levels of objects')
})

t.test('the charset parameter is read case-insensitively, quoted or not, and absent when not given', async (t) => {
  t.equal(charsetOf('application/json'), undefined)
  t.equal(charsetOf(undefined), undefined)
  t.equal(charsetOf('application/json; charset=utf-8'), 'utf-8')
  t.equal(charsetOf('application/json;CHARSET="Latin1"'), 'Latin1')
  t.equal(charsetOf('application/json; foo=bar; charset = UTF-8 '), 'UTF-8')
  t.equal(charsetOf('application/json; notcharset=utf-16'), undefined)
})
