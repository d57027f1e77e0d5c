import t from 'tap'
import { escapeHtml, html, SafeHtml } from '../../src/admin/status-page-html.ts'

t.test('escapeHtml: the five characters that can end text or an attribute', async (t) => {
  t.equal(escapeHtml('<script>alert("x") & \'y\'</script>'), '&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;')
  t.equal(escapeHtml('0x80044331 plain text'), '0x80044331 plain text', 'nothing else changes')
  t.equal(escapeHtml('&amp;'), '&amp;amp;', 'escaped again, not taken as already escaped')
})

t.test('html: interpolated values are escaped, markup the template built is kept', async (t) => {
  const reason = '"><img src=x onerror=alert(1)>'
  t.equal(html`<td title="${reason}">${reason}</td>`.toString(), '<td title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</td>')
  const row = html`<tr><td>${'a<b'}</td></tr>`
  t.equal(html`<table>${row}</table>`.toString(), '<table><tr><td>a&lt;b</td></tr></table>', 'nested templates are not escaped twice')
  t.equal(html`<ul>${['<1>', 2].map((item) => html`<li>${item}</li>`)}</ul>`.toString(), '<ul><li>&lt;1&gt;</li><li>2</li></ul>', 'arrays joined')
  t.equal(html`${['<b>']}`.toString(), '&lt;b&gt;', 'strings in arrays escaped too')
  t.equal(html`[${undefined}${null}${false}${0}]`.toString(), '[0]', 'nothing for absent values; zero is a value')
})

t.test('SafeHtml cannot be made outside the template', async (t) => {
  t.throws(() => new SafeHtml('<b>', Symbol('SafeHtml')), TypeError)
})
