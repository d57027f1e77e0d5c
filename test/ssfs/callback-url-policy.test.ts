import t from 'tap'
import { checkCallbackUrl, parseCallbackHostAllowList } from '../../src/ssfs/callback-url-policy.ts'

const rules = parseCallbackHostAllowList('allowed.example.com, *.adobe.io, http://127.0.0.1:4100, https://[::1]:8443')

const allowed = (url: string) => checkCallbackUrl(url, rules).allowed

t.test('allowed hosts pass', async (t) => {
  t.ok(allowed('https://allowed.example.com/customflowaction/submitCustomFlowAction'))
  t.ok(allowed('https://ALLOWED.example.com/x'), 'host names compare case-insensitively')
  t.ok(allowed('https://mkto-cfa.adobe.io/x'), 'wildcard matches a sub-domain')
  t.ok(allowed('http://127.0.0.1:4100/cb'), 'plain http only where spelled out with its port')
  t.ok(allowed('https://[::1]:8443/cb'), 'IPv6 literal when listed')
  t.ok(allowed('http://2130706433:4100/cb'), 'a numeric spelling of a listed address is that address (WHATWG parsing)')
})

t.test('look-alikes, literals and other schemes are refused', async (t) => {
  for (const url of [
    'https://allowed.example.com.evil.test/',
    'https://allowed.example.com@evil.test/',
    'https://evil.test/allowed.example.com',
    'https://evil.test/?h=allowed.example.com',
    'https://user:pw@allowed.example.com/',
    'http://allowed.example.com/',
    'https://allowed.example.com:8443/',
    'https://adobe.io/',
    'https://evil-adobe.io/',
    'http://127.0.0.1:4101/',
    'https://127.0.0.1:4100/',
    'http://[::ffff:127.0.0.1]:4100/',
    'http://[::1]:8443/',
    'https://10.0.0.1/',
    'ftp://allowed.example.com/',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'not a url'
  ]) {
    const check = checkCallbackUrl(url, rules)
    t.equal(check.allowed, false, `${url} refused`)
    if (!check.allowed) t.ok(check.reason.length > 0)
  }
})

t.test('the allow-list itself is validated', async (t) => {
  t.throws(() => parseCallbackHostAllowList(''), /empty/)
  t.throws(() => parseCallbackHostAllowList('https://host/path'), /bare host/)
  t.throws(() => parseCallbackHostAllowList('gopher://host'), /http or https/)
})
