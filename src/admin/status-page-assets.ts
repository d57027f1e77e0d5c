/**
 * The status page's script and style sheet (src/admin/status-page.ts), served from /admin beside it:
 * the page's Content-Security-Policy is `default-src 'self'`, so no inline script or style runs, and
 * nothing comes from a CDN. Plain browser JavaScript, no build step: kept here as text so the
 * compiled service carries it with no file to copy.
 *
 * The script calls the admin API's own routes; the browser sends the Basic credentials it asked the
 * person for with each same-origin fetch. Answers are shown with textContent, never as HTML.
 */

export const STATUS_PAGE_SCRIPT = `'use strict'
;(function () {
  var message = document.getElementById('message')
  function say (text) { message.textContent = text }

  async function post (path) {
    var response = await fetch(path, { method: 'POST', credentials: 'same-origin' })
    var body = await response.json().catch(function () { return {} })
    if (!response.ok) throw new Error((body && body.message) || ('HTTP ' + response.status))
    return body
  }

  document.addEventListener('click', async function (event) {
    var button = event.target.closest('button[data-action]')
    if (button === null) return
    button.disabled = true
    var action = button.dataset.action
    try {
      if (action === 'retry') {
        var answer = await post('/admin/parked/' + encodeURIComponent(button.dataset.id) + '/retry')
        sessionStorage.setItem('status-page-message', 'Retried ' + answer.id + ': ' + answer.result)
      } else {
        await post('/admin/sync/' + encodeURIComponent(button.dataset.direction) + '/' + action)
        sessionStorage.setItem('status-page-message', (action === 'pause' ? 'Paused ' : 'Resumed ') + button.dataset.direction)
      }
      location.reload()
    } catch (error) {
      say(action + ' failed: ' + error.message)
      button.disabled = false
    }
  })

  var shown = sessionStorage.getItem('status-page-message')
  if (shown !== null) { sessionStorage.removeItem('status-page-message'); say(shown) }

  // A Marketo id or an email is a person; lead/<id> or contact/<id> a Dynamics record.
  function explainPath (query) {
    var record = /^(lead|contact)[\\/: ]+(.+)$/i.exec(query)
    if (record !== null) return '/admin/explain/record/' + record[1].toLowerCase() + '/' + encodeURIComponent(record[2])
    return '/admin/explain/person/' + encodeURIComponent(query)
  }

  var form = document.getElementById('explain')
  var explanation = document.getElementById('explanation')
  form.addEventListener('submit', async function (event) {
    event.preventDefault()
    var query = form.elements.q.value.trim()
    if (query === '') return
    explanation.textContent = 'Looking up ' + query + '…'
    try {
      // An email goes in a POST body, never in a URL (proxies log paths).
      var response = query.indexOf('@') !== -1
        ? await fetch('/admin/explain/person', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: query }) })
        : await fetch(explainPath(query), { credentials: 'same-origin' })
      var body = await response.json().catch(function () { return {} })
      if (response.status === 404) explanation.textContent = 'not found: ' + query
      else if (!response.ok) explanation.textContent = 'explain failed: ' + (body.message || ('HTTP ' + response.status))
      else explanation.textContent = JSON.stringify(body, null, 2)
    } catch (error) {
      explanation.textContent = 'explain failed: ' + error.message
    }
  })
})()
`

export const STATUS_PAGE_STYLE = `body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222 }
h1 { font-size: 1.4rem; margin: 0 } h2 { font-size: 1.1rem; margin-top: 1.8rem }
table { border-collapse: collapse; width: 100% } th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top }
thead th { background: #f4f4f4 } .reason { font-family: ui-monospace, monospace } .hint { color: #666; font-size: .9em }
.notice, #message:not(:empty) { background: #fff6d6; padding: .4rem .6rem } pre#explanation { background: #f7f7f7; padding: .6rem; white-space: pre-wrap }
meter { width: 12rem } input[name=q] { width: 24rem }
`
