// Facilitator side panels: sessions with their summary charts, bookmarks, the edit-burst timeline.
import { el } from './comments-view.js'
import { barChart, contributionRows, CONTRIBUTION_SERIES } from './charts.js'

export function clock (iso) {
  if (!iso) return ''
  const date = new Date(typeof iso === 'number' ? iso * 1000 : iso)
  return date.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

function summaryChart (title, summary, width) {
  return el('figure', { class: 'fac-chart' }, barChart({
    title,
    rows: contributionRows(summary.participants),
    series: CONTRIBUTION_SERIES,
    width: Math.max(320, Math.min(640, Math.round(width) || 520)) // text stays legible on phones
  }))
}

/**
 * Sessions (with bookmarks inside) and loose bookmarks, plus owner controls.
 * `ctx`: {api, base, isOwner, seek(seq), fail(err)}. Returns {element, refresh()}.
 */
export function sessionsPanel (ctx) {
  const { api, base } = ctx
  const list = el('div', { class: 'fac-sessions' })
  const chartSlot = el('div', { class: 'fac-chart-slot', 'aria-live': 'polite' })
  const labelInput = el('input', { id: 'fac-bookmark-label', type: 'text', placeholder: 'Bookmark label', maxlength: '200' })
  const sessionInput = el('input', { id: 'fac-session-name', type: 'text', placeholder: 'Session name', maxlength: '200' })
  let openSession = null

  const showSummary = async (title, path) => {
    try {
      chartSlot.replaceChildren(el('p', { class: 'fac-hint', text: 'Loading summary…' }))
      const summary = await api.get(path)
      chartSlot.replaceChildren(summaryChart(title, summary, chartSlot.clientWidth))
    } catch (err) {
      ctx.fail(err)
    }
  }

  const bookmarkItem = (mark) => el('li', {},
    el('button', {
      type: 'button',
      class: 'fac-link',
      'data-seq': mark.seq,
      onclick: () => ctx.seek(mark.seq)
    }, mark.label),
    el('span', { class: 'fac-meta', text: ` ${clock(mark.at)} · seq ${mark.seq}` }))

  async function refresh () {
    try {
      const view = await api.get(`${base}/sessions`)
      openSession = view.sessions.find((s) => s.open) ?? null
      const items = view.sessions.map((s) => el('li', { class: 'fac-session' },
        el('div', { class: 'fac-session-head' },
          el('strong', { text: s.name }),
          el('span', { class: 'fac-meta', text: ` ${clock(s.started_at)} → ${s.open ? 'now' : clock(s.ended_at)}` })),
        el('div', { class: 'fac-buttons' },
          el('button', { type: 'button', onclick: () => ctx.seek(s.start_seq) }, 'Go to start'),
          el('button', {
            type: 'button',
            class: 'fac-summary-button',
            onclick: () => showSummary(`Session “${s.name}”: contributions`, `${base}/sessions/${s.id}/summary`)
          }, 'Summary'),
          ctx.isOwner && s.open
            ? el('button', { type: 'button', onclick: () => act(() => api.post(`${base}/sessions/${s.id}/end`)) }, 'End session')
            : null),
        s.bookmarks.length ? el('ul', { class: 'fac-bookmarks' }, s.bookmarks.map(bookmarkItem)) : null))
      list.replaceChildren(...[
        items.length ? el('ul', { class: 'fac-session-list' }, items) : el('p', { class: 'fac-hint', text: 'No sessions yet.' }),
        view.bookmarks.length
          ? el('div', {}, el('h4', { text: 'Bookmarks' }), el('ul', { class: 'fac-bookmarks' }, view.bookmarks.map(bookmarkItem)))
          : null].filter(Boolean))
      const last = view.sessions[view.sessions.length - 1]
      if (last && !chartSlot.querySelector('svg')) {
        await showSummary(`Session “${last.name}”: contributions`, `${base}/sessions/${last.id}/summary`)
      }
    } catch (err) {
      ctx.fail(err)
    }
  }

  async function act (call) {
    try {
      await call()
      await refresh()
    } catch (err) {
      ctx.fail(err)
    }
  }

  const ownerTools = ctx.isOwner
    ? el('div', { class: 'fac-owner-tools' },
      el('form', {
        class: 'fac-inline-form',
        onsubmit: (event) => {
          event.preventDefault()
          const name = sessionInput.value.trim()
          if (!name) return
          act(async () => { await api.post(`${base}/sessions`, { name }); sessionInput.value = '' })
        }
      }, el('label', { for: 'fac-session-name', text: 'New session' }), sessionInput,
      el('button', { type: 'submit' }, 'Start session')),
      el('form', {
        class: 'fac-inline-form',
        onsubmit: (event) => {
          event.preventDefault()
          const label = labelInput.value.trim()
          if (!label) return
          const body = openSession ? { label, session: openSession.id } : { label }
          act(async () => { await api.post(`${base}/bookmarks`, body); labelInput.value = '' })
        }
      }, el('label', { for: 'fac-bookmark-label', text: 'Bookmark now' }), labelInput,
      el('button', { type: 'submit' }, 'Add bookmark')))
    : null

  const element = el('section', { class: 'fac-panel', 'aria-labelledby': 'fac-sessions-title' },
    el('h3', { id: 'fac-sessions-title', text: 'Sessions and bookmarks' }),
    el('div', { class: 'fac-buttons' },
      el('button', {
        type: 'button',
        class: 'fac-summary-button',
        onclick: () => showSummary('Whole history: contributions', `${base}/history/summary`)
      }, 'Whole-history summary')),
    ownerTools, list, chartSlot)
  return { element, refresh, showSummary }
}

/** The timeline of bursts, comments, joins and sessions: each entry seeks to its moment. */
export function timelinePanel (ctx) {
  const list = el('ol', { class: 'fac-timeline' })
  const element = el('section', { class: 'fac-panel', 'aria-labelledby': 'fac-timeline-title' },
    el('h3', { id: 'fac-timeline-title', text: 'Who did what, when' }), list)

  const describe = (entry) => {
    switch (entry.kind) {
      case 'edit':
        return `${entry.author} wrote +${entry.inserted} −${entry.deleted} (${entry.updates} edit${entry.updates === 1 ? '' : 's'}, seq ${entry.first_seq}–${entry.last_seq})`
      case 'join': return `${entry.author} joined`
      case 'leave': return `${entry.author} left`
      case 'session.started': return `${entry.author} started session “${entry.name}”`
      case 'session.ended': return `${entry.author} ended a session`
      case 'bookmark.added': return `${entry.author} bookmarked “${entry.label}”`
      case 'history.restored': return `${entry.author} restored seq ${entry.to_seq}`
      case 'comment.thread_created': return `${entry.author} commented`
      case 'comment.added': return `${entry.author} replied`
      case 'comment.thread_resolved': return `${entry.author} resolved a thread`
      case 'comment.thread_reopened': return `${entry.author} reopened a thread`
      default: return `${entry.author} ${entry.kind.replace('comment.', '').replaceAll('_', ' ')}`
    }
  }
  const seqOf = (entry) => entry.kind === 'edit' ? entry.last_seq : entry.seq

  function show (timeline) {
    const entries = timeline.entries.slice().reverse()
    list.replaceChildren(...entries.map((entry) => {
      const seq = seqOf(entry)
      return el('li', { class: `fac-entry fac-entry-${entry.kind.split('.')[0]}` },
        el('time', { datetime: entry.at, text: clock(entry.at) }), ' ',
        typeof seq === 'number'
          ? el('button', { type: 'button', class: 'fac-link', onclick: () => ctx.seek(seq), 'data-seq': seq }, describe(entry))
          : el('span', { text: describe(entry) }))
    }))
    if (!entries.length) list.replaceChildren(el('li', { class: 'fac-hint', text: 'Nothing happened yet.' }))
  }
  return { element, show }
}
