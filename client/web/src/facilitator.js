// The facilitator view (`#/doc/<name>/history`): scrub and play the history, presence, sessions, restore.
import { el } from './comments-view.js'
import { documentPath } from './comments.js'
import { Player } from './facilitator-player.js'
import { clock, sessionsPanel, timelinePanel } from './facilitator-panels.js'
import { injectFacilitatorStyles } from './facilitator-style.js'

const SPEEDS = [1, 2, 10, 100]

/** The document text as nodes, with a zero-width caret (named by CSS) where each person's cursor is. */
function renderText (target, text, people) {
  const carets = people.filter((p) => p.to !== null && p.to <= text.length).sort((a, b) => a.to - b.to)
  const nodes = []
  let last = 0
  for (const person of carets) {
    nodes.push(text.slice(last, person.to))
    nodes.push(el('span', {
      class: 'fac-caret',
      'data-name': person.name,
      style: `--fac-color:${person.color}`,
      title: person.name
    }))
    last = person.to
  }
  nodes.push(text.slice(last))
  target.replaceChildren(...nodes)
}

export function mountFacilitator ({ root, docName, api, user, role }) {
  injectFacilitatorStyles()
  const base = documentPath(docName)
  const isOwner = role === 'owner'
  let alive = true
  let dragging = false

  const status = el('p', { class: 'fac-status', 'aria-live': 'polite' })
  // results of actions (restore) stay here; `status` is rewritten on every render of the moment
  const notice = el('p', { class: 'fac-notice', role: 'status', hidden: true })
  const error = el('p', { class: 'fac-error', role: 'alert', hidden: true })
  const fail = (err) => {
    error.textContent = err?.message || String(err)
    error.hidden = false
  }
  const player = new Player({ api, base, onChange: () => scheduleRender(), onError: fail })

  const slider = el('input', {
    id: 'fac-slider',
    class: 'fac-slider',
    type: 'range',
    min: '0',
    max: '0',
    step: '1',
    value: '0'
  })
  let seekTimer = null
  slider.addEventListener('input', () => {
    dragging = true
    if (player.playing) player.pause()
    clearTimeout(seekTimer)
    const seq = Number(slider.value)
    seekTimer = setTimeout(async () => { await player.seek(seq); dragging = false; scheduleRender() }, 60)
  })
  const playButton = el('button', { type: 'button', class: 'fac-play', onclick: () => togglePlay() }, 'Play')
  const speedButtons = SPEEDS.map((speed) => el('button', {
    type: 'button',
    class: 'fac-speed',
    'aria-pressed': String(speed === 1),
    'data-speed': speed,
    onclick: () => { player.setSpeed(speed); scheduleRender() }
  }, `${speed}×`))
  const restoreButton = isOwner
    ? el('button', { type: 'button', class: 'fac-restore', onclick: () => confirmRestore() }, 'Restore this moment')
    : null
  const refreshButton = el('button', { type: 'button', onclick: () => load(false) }, 'Refresh')
  const docView = el('pre', { class: 'fac-doc', tabindex: '0', 'aria-label': 'The document at this moment (read-only)' })
  const people = el('ul', { class: 'fac-people', 'aria-label': 'Who was here' })
  const sessions = sessionsPanel({ api, base, isOwner, seek: (seq) => seekTo(seq), fail })
  const timeline = timelinePanel({ seek: (seq) => seekTo(seq) })

  const dialogText = el('p', {})
  const dialog = el('dialog', { class: 'fac-dialog', 'aria-labelledby': 'fac-dialog-title' },
    el('h3', { id: 'fac-dialog-title', text: 'Restore this moment?' }), dialogText,
    el('form', { method: 'dialog', class: 'fac-buttons' },
      el('button', { value: 'cancel', type: 'submit' }, 'Cancel'),
      el('button', { value: 'restore', type: 'submit', class: 'fac-primary' }, 'Restore')))
  dialog.addEventListener('close', () => { if (dialog.returnValue === 'restore') restore() })

  root.classList.add('fac')
  root.replaceChildren(
    el('div', { class: 'fac-controls', role: 'group', 'aria-label': 'Replay controls' },
      playButton,
      el('div', { class: 'fac-speeds', role: 'group', 'aria-label': 'Speed' }, speedButtons),
      el('div', { class: 'fac-scrub' }, el('label', { for: 'fac-slider', class: 'fac-slider-label' }, 'Moment'), slider),
      refreshButton, restoreButton),
    status, notice, error,
    el('div', { class: 'fac-main' },
      el('section', { class: 'fac-doc-wrap', 'aria-label': 'Document at this moment' },
        el('h3', { text: 'Who was here' }), people, docView),
      el('div', { class: 'fac-side' }, sessions.element, timeline.element)),
    dialog)

  function togglePlay () {
    if (player.playing) return player.pause()
    if (player.seq >= player.lastSeq) {
      player.seek(0).then(() => player.play())
    } else {
      player.play()
    }
  }

  async function seekTo (seq) {
    player.pause()
    await player.seek(seq)
  }

  let renderQueued = false
  function scheduleRender () {
    if (renderQueued || !alive) return
    renderQueued = true
    requestAnimationFrame(() => { renderQueued = false; if (alive) render() })
  }

  function render () {
    slider.max = String(player.lastSeq)
    if (!dragging) slider.value = String(player.seq)
    const when = player.time ? clock(player.time) : 'the beginning'
    slider.setAttribute('aria-valuetext', `edit ${player.seq} of ${player.lastSeq}, ${when}`)
    status.textContent = `Edit ${player.seq} of ${player.lastSeq} · ${when}${player.playing ? ` · playing at ${player.speed}×` : ''}`
    root.dataset.seq = String(player.seq)
    root.dataset.playing = String(player.playing)
    playButton.textContent = player.playing ? 'Pause' : 'Play'
    playButton.setAttribute('aria-pressed', String(player.playing))
    for (const button of speedButtons) button.setAttribute('aria-pressed', String(Number(button.dataset.speed) === player.speed))
    const here = player.people()
    renderText(docView, player.text, here)
    people.replaceChildren(...(here.length
      ? here.map((p) => el('li', {},
        el('span', { class: 'fac-dot', style: `background:${p.color}`, 'aria-hidden': 'true' }), p.name))
      : [el('li', { class: 'fac-hint', text: 'Nobody' })]))
  }

  function confirmRestore () {
    dialogText.textContent = `The document will read again as it did at edit ${player.seq}` +
      `${player.time ? ` (${clock(player.time)})` : ''}. Later edits stay in the history.`
    dialog.returnValue = ''
    dialog.showModal()
  }

  async function restore () {
    try {
      const done = await api.post(`${base}/history/restore`, { seq: player.seq })
      notice.textContent = `Restored edit ${done.restored_to_seq}${done.changed ? '' : ' (nothing to change)'}`
      notice.hidden = false
      await load(false)
    } catch (err) {
      fail(err)
    }
  }

  async function load (first) {
    try {
      error.hidden = true
      const view = await api.get(`${base}/history/timeline?gap=30&limit=1000`)
      if (!alive) return
      const atEnd = player.seq >= player.lastSeq
      player.lastSeq = view.seq
      timeline.show(view)
      if (first || atEnd) await player.seek(view.seq)
      scheduleRender()
      await sessions.refresh()
    } catch (err) {
      fail(err)
    }
  }

  load(true)

  return {
    destroy () {
      alive = false
      clearTimeout(seekTimer)
      player.destroy()
      if (dialog.open) dialog.close()
      root.replaceChildren()
      root.classList.remove('fac')
    }
  }
}
