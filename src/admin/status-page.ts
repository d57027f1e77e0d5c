import type { FeedDirection } from '../background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../background-sync/marketo-change-pass.ts'
import type { ParkedChange } from '../background-sync/parked-changes.ts'
import type { MarketoCallBudget } from '../marketo/marketo-call-budget.ts'
import { readSyncLag } from '../metrics/sync-progress.ts'
import type { RedisClient } from '../queue/connections.ts'
import { SYNC_TABLES } from '../sync/field-mapping.ts'
import { listParkedFailures, type ParkedFailureDeps } from './parked-failures.ts'
import { html, type SafeHtml } from './status-page-html.ts'
import type { SyncThroughput } from './status-page-throughput.ts'
import { syncDirections, type DirectionStatus, type SyncDirectionDeps } from './sync-directions.ts'

/**
 * The status page at /admin (issue 13 §5): Marketo's Sync Status and Errors tabs and more, in one
 * server-rendered page — each direction's lag, backlog, throughput and pause state, the Marketo
 * calls spent today against the budget, and the recent parked failures with their reasons. The
 * actions (retry, pause, resume, explain) are the admin API's own routes, called by a small script
 * (status-page-assets.ts): the page holds no logic of its own beyond showing.
 *
 * Nothing personal is shown: parked failures carry ids, field names and codes only (parked-changes.ts).
 */

export const STATUS_PAGE_PARKED_LIMIT = 50

export interface StatusPageDeps {
  readonly redis: RedisClient
  readonly keyPrefix: string
  readonly directions: SyncDirectionDeps
  readonly parked: ParkedFailureDeps
  readonly budget: Pick<MarketoCallBudget, 'today' | 'dailyBudget'>
  readonly throughput: Pick<SyncThroughput, 'lastHour'>
  readonly syncEnabled: boolean
}

export interface DirectionView extends DirectionStatus {
  /** The sync-lag metric's measure (sync-progress.ts): seconds; undefined before the first pass. */
  readonly lagSeconds: number | undefined
  readonly syncedLastHour: number
}

export interface StatusPageModel {
  readonly generatedAt: Date
  readonly syncEnabled: boolean
  readonly directions: readonly DirectionView[]
  readonly budget: { readonly spent: number, readonly daily: number, readonly resetsAt: Date }
  readonly parked: { readonly entries: readonly ParkedChange[], readonly more: boolean }
}

const FEEDS: ReadonlyArray<{ direction: FeedDirection, table: string }> = [
  ...SYNC_TABLES.map((table) => ({ direction: 'dynamics-to-marketo' as const, table })),
  { direction: MARKETO_CHECKPOINT.direction, table: MARKETO_CHECKPOINT.table }
]

export async function statusPage (deps: StatusPageDeps): Promise<StatusPageModel> {
  const [directions, today, parked] = await Promise.all([
    syncDirections(deps.directions),
    deps.budget.today(),
    listParkedFailures(deps.parked, { limit: String(STATUS_PAGE_PARKED_LIMIT) })
  ])
  const lags = await readSyncLag(deps.redis, deps.keyPrefix, FEEDS, today.now)
  const views = await Promise.all(directions.map(async (status): Promise<DirectionView> => {
    const own = lags.filter((lag) => lag.direction === status.direction).map((lag) => lag.seconds)
    return { ...status, lagSeconds: own.length === 0 ? undefined : Math.round(Math.max(...own)), syncedLastHour: await deps.throughput.lastHour(status.direction) }
  }))
  return {
    generatedAt: new Date(today.now),
    syncEnabled: deps.syncEnabled,
    directions: views,
    budget: { spent: deps.budget.dailyBudget - today.remaining, daily: deps.budget.dailyBudget, resetsAt: new Date(today.resetsAt) },
    parked
  }
}

/** Pure: the page. Every value goes through the escaping template (status-page-html.ts). */
export function renderStatusPage (model: StatusPageModel): string {
  const { budget } = model
  const share = budget.daily === 0 ? 0 : Math.round(100 * budget.spent / budget.daily)
  return '<!doctype html>\n' + html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>marketo-dynamics-sync — status</title>
<link rel="stylesheet" href="/admin/status-page.css">
<script src="/admin/status-page.js" defer></script>
</head>
<body>
<header><h1>marketo-dynamics-sync</h1><p>Status at <time datetime="${model.generatedAt.toISOString()}">${model.generatedAt.toISOString()}</time> · <a href="/admin">refresh</a> · <a href="/admin/queues">queues</a> · <a href="/docs">API docs</a></p></header>
${model.syncEnabled ? '' : html`<p class="notice">The background sync is off (BACKGROUND_SYNC): its directions do not move.</p>`}
<p id="message" role="status"></p>

<section>
<h2>Sync</h2>
<table id="directions">
<thead><tr><th>Direction</th><th>State</th><th>Lag</th><th>Backlog</th><th>Synced, last hour</th><th></th></tr></thead>
<tbody>
${model.directions.map(directionRow)}
</tbody>
</table>
<p class="hint">Lag: the age of the oldest change that may not be applied yet. Backlog: the direction's pass jobs, and its feeds part-way through a read (neither side says how many changes are left).</p>
</section>

<section>
<h2>Marketo API budget</h2>
<p id="budget"><meter min="0" max="${budget.daily}" value="${budget.spent}"></meter> <span class="spent">${budget.spent}</span> of <span class="daily">${budget.daily}</span> calls spent today (${share}%), resets at <time datetime="${budget.resetsAt.toISOString()}">${budget.resetsAt.toISOString()}</time></p>
</section>

<section>
<h2>Explain a person or a record</h2>
<form id="explain"><input name="q" aria-label="Marketo id, email, or lead/&lt;id&gt;, contact/&lt;id&gt;" placeholder="Marketo id, email, or lead/<id>, contact/<id>" required> <button type="submit">Explain</button></form>
<pre id="explanation"></pre>
</section>

<section>
<h2>Failures</h2>
${model.parked.entries.length === 0
  ? html`<p id="no-failures">No parked failures.</p>`
  : html`<table id="failures">
<thead><tr><th>Parked</th><th>Direction</th><th>Record</th><th>Person</th><th>Fields</th><th>Reason</th><th>Attempts</th><th></th></tr></thead>
<tbody>
${model.parked.entries.map(failureRow)}
</tbody>
</table>`}
${model.parked.more ? html`<p>Only the oldest ${STATUS_PAGE_PARKED_LIMIT}: <a href="/admin/parked">all of them</a> (JSON).</p>` : ''}
</section>
</body>
</html>
`.toString()
}

function directionRow (direction: DirectionView): SafeHtml {
  const { passes } = direction
  const partWay = direction.feeds.filter((feed) => feed.cursor.kind === 'next-link').map((feed) => feed.feed)
  return html`<tr data-direction="${direction.direction}">
<th scope="row">${direction.direction}</th>
<td class="state">${direction.paused ? html`paused <small>since ${direction.pausedAt?.toISOString()}</small>` : 'running'}</td>
<td class="lag">${direction.lagSeconds === undefined ? 'not read yet' : duration(direction.lagSeconds)}</td>
<td class="backlog">${passes.waiting} waiting, ${passes.active} running, ${passes.delayed} scheduled${passes.failed > 0 ? html`, <strong>${passes.failed} failed</strong>` : ''}${partWay.length > 0 ? html`; reading part-way: ${partWay.join(', ')}` : ''}</td>
<td class="throughput">${direction.syncedLastHour}</td>
<td>${direction.paused
    ? html`<button type="button" data-action="resume" data-direction="${direction.direction}">Resume</button>`
    : html`<button type="button" data-action="pause" data-direction="${direction.direction}">Pause</button>`}</td>
</tr>
`
}

function failureRow (entry: ParkedChange): SafeHtml {
  const person = entry.direction === 'marketo-to-dynamics' ? String(entry.personId) : entry.personIds.join(', ')
  return html`<tr data-parked-id="${entry.id}">
<td><time datetime="${entry.parkedAt.toISOString()}">${entry.parkedAt.toISOString()}</time></td>
<td>${entry.direction}</td>
<td>${entry.table} ${entry.recordId}</td>
<td>${person}</td>
<td>${entry.fields.join(', ')}</td>
<td class="reason">${entry.code}${'status' in entry && entry.status !== undefined ? html` <small>(HTTP ${entry.status})</small>` : ''}</td>
<td>${entry.attempts}</td>
<td><button type="button" data-action="retry" data-id="${entry.id}">Retry</button></td>
</tr>
`
}

/** Pure: seconds as an operator reads them, e.g. 42 s, 3 min 5 s, 2 h 10 min. */
export function duration (seconds: number): string {
  if (seconds < 60) return `${seconds} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
}
