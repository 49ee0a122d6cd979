// The comment margin: threads anchored to the Markdown text, highlighted in the editor, kept live.
import { EditorView, keymap } from '@codemirror/view'
import { Prec, StateEffect } from '@codemirror/state'
import { anchorOf, installHighlights, locate } from './comments-highlight.js'
import { el, textForm, threadBody } from './comments-view.js'
import { injectCommentStyles } from './comments-style.js'
import { colorFor as colorOf } from './identity.js'

const ROOT = 'content'
const RANKS = { viewer: 0, commenter: 1, editor: 2, owner: 3 }
const SHORTCUT = 'Mod-Alt-m'

/** Base path of a document's comment routes (each name segment URL-encoded). */
export function documentPath (docName) {
  return `/api/documents/${docName.split('/').map(encodeURIComponent).join('/')}/-`
}


export function mountComments ({ root, view, ydoc, ytext, docName, api, user, role }) {
  injectCommentStyles()
  const base = documentPath(docName)
  const canComment = (RANKS[role] ?? 0) >= RANKS.commenter
  const canModerate = role === 'owner'
  const threads = new Map() // id -> the server's thread view
  const cards = new Map() // id -> {card, body, reply, key}
  const decoded = new Map()
  const people = new Set([user.id])
  let activeId = null
  let editing = null
  let composer = null
  let alive = true

  const who = (id) => id === user.id
    ? { name: user.name || id, color: user.color || colorOf(id) }
    : { name: id ?? 'someone', color: colorOf(id ?? '') }

  // -- layout ---------------------------------------------------------------------------------
  root.classList.add('cmt-margin')
  root.setAttribute('aria-label', 'Comments')
  const commentButton = el('button', {
    type: 'button',
    class: 'cmt-primary cmt-new',
    disabled: true,
    title: 'Comment on the selected text (Ctrl+Alt+M)',
    'aria-keyshortcuts': 'Control+Alt+M',
    onclick: () => openComposer()
  }, 'Comment')
  const count = el('span', { class: 'cmt-count', 'aria-live': 'polite' })
  const composerSlot = el('div', { class: 'cmt-composer-slot' })
  const openList = el('div', { class: 'cmt-list', role: 'list', 'aria-label': 'Open comment threads' })
  const detachedList = el('div', { class: 'cmt-list', role: 'list' })
  const detached = el('section', { class: 'cmt-detached', 'aria-label': 'Detached comment threads', hidden: true },
    el('h3', { text: 'Detached' }), detachedList)
  const resolvedList = el('div', { class: 'cmt-list', role: 'list' })
  const resolvedSummary = el('summary', { class: 'cmt-resolved-toggle', text: 'Resolved' })
  const resolved = el('details', { class: 'cmt-resolved', hidden: true }, resolvedSummary, resolvedList)
  const status = el('p', { class: 'cmt-error', role: 'alert', hidden: true })
  const empty = el('p', { class: 'cmt-hint', text: canComment ? 'Select text, then press Comment.' : 'No comments yet.' })
  root.replaceChildren(
    el('div', { class: 'cmt-toolbar' }, el('h2', { text: 'Comments' }), count, canComment ? commentButton : null),
    status, composerSlot, empty, openList, detached, resolved)

  const fail = (err) => {
    status.textContent = err?.message || String(err)
    status.hidden = false
  }

  // -- anchors and order ----------------------------------------------------------------------
  const placeOf = (thread) => {
    const found = locate(ydoc, ytext, thread.anchor, decoded)
    if (found) return { ...found, detached: found.from >= found.to, known: true }
    return { from: thread.range?.start ?? 0, to: thread.range?.end ?? 0, detached: thread.state === 'orphaned', known: false }
  }
  const highlightRanges = () => {
    const ranges = []
    for (const thread of threads.values()) {
      if (thread.status === 'resolved') continue
      const place = placeOf(thread)
      if (place.known && !place.detached) ranges.push({ id: thread.id, from: place.from, to: place.to, active: thread.id === activeId })
    }
    return ranges
  }
  const highlights = installHighlights(view, ytext, highlightRanges)

  // -- editor hooks: selection -> button and active thread; shortcut ---------------------------
  const onEditorUpdate = EditorView.updateListener.of((update) => {
    if (!alive || !(update.selectionSet || update.docChanged)) return
    const selection = update.state.selection.main
    commentButton.disabled = selection.empty
    if (update.selectionSet && !selection.empty) return
    const at = selection.head
    let hit = null
    for (const thread of threads.values()) {
      if (thread.status === 'resolved') continue
      const place = placeOf(thread)
      if (!place.detached && place.known && at > place.from && at < place.to) { hit = thread.id; break }
    }
    if (update.selectionSet && hit !== activeId) setActive(hit, { scroll: true })
  })
  const shortcut = Prec.high(keymap.of([{ key: SHORTCUT, run: () => { openComposer(); return true } }]))
  view.dispatch({ effects: StateEffect.appendConfig.of([onEditorUpdate, canComment ? shortcut : []]) })

  // -- rendering ------------------------------------------------------------------------------
  const ctx = {
    me: user.id,
    canComment,
    canModerate,
    who,
    users: () => [...people],
    get editing () { return editing },
    react: (comment, emoji, on) => {
      const path = `${base}/threads/${comment.thread}/comments/${comment.id}/reactions/${encodeURIComponent(emoji)}`
      return act(comment.thread, () => on ? api.put(path) : api.delete(path))
    },
    startEdit: (comment) => { editing = comment.id; renderThread(comment.thread, true) },
    cancelEdit: () => { const id = editing; editing = null; if (id) rerenderAll() },
    saveEdit: async (comment, text) => {
      await api.patch(`${base}/threads/${comment.thread}/comments/${comment.id}`, { body: text })
      editing = null
      await refetch(comment.thread)
    },
    remove: (comment) => {
      if (!window.confirm('Delete this comment?')) return
      act(comment.thread, () => api.delete(`${base}/threads/${comment.thread}/comments/${comment.id}`))
    },
    setStatus: (thread, resolve) => act(thread.id, () => api.post(`${base}/threads/${thread.id}/${resolve ? 'resolve' : 'reopen'}`))
  }

  async function act (threadId, call) {
    try {
      await call()
      await refetch(threadId)
    } catch (err) {
      fail(err)
    }
  }

  function renderThread (id, force = false, text = ytext.toString()) {
    const thread = threads.get(id)
    if (!thread) return
    const place = placeOf(thread)
    place.quote = place.known && !place.detached ? text.slice(place.from, place.to) : null
    const key = JSON.stringify([thread, place.detached, place.quote, id === editing ? editing : null])
    let entry = cards.get(id)
    if (!entry) {
      const card = el('article', {
        class: 'cmt-thread',
        role: 'listitem',
        tabindex: '0',
        'data-thread-id': id,
        onclick: (event) => { if (!event.target.closest('button, textarea, summary, form, a')) selectThread(id, true) },
        onkeydown: (event) => { if (event.key === 'Enter' && event.target === card) selectThread(id) }
      })
      const body = el('div', { class: 'cmt-thread-body' })
      const reply = canComment
        ? textForm({
          label: 'Reply',
          submitLabel: 'Reply',
          users: ctx.users,
          className: 'cmt-reply',
          onSubmit: (text) => sendReply(id, text),
          onEscape: (textarea) => { textarea.value = ''; card.focus() }
        })
        : null
      card.append(body, reply ?? '')
      entry = { card, body, reply, key: null }
      cards.set(id, entry)
    }
    if (force || entry.key !== key) {
      entry.body.replaceChildren(...threadBody(thread, place, ctx).filter(Boolean))
      entry.key = key
    }
    entry.card.classList.toggle('cmt-active', id === activeId)
    entry.card.setAttribute('aria-label', `Comment thread on “${place.quote || thread.quote || thread.original_quote}”`)
  }

  function placeIn (list, ids) {
    const wanted = ids.map((id) => cards.get(id).card)
    const current = [...list.children]
    if (wanted.length === current.length && wanted.every((c, i) => c === current[i])) return
    list.replaceChildren(...wanted)
  }

  function rerenderAll () {
    const open = []
    const gone = []
    const done = []
    const text = ytext.toString()
    for (const thread of threads.values()) {
      renderThread(thread.id, false, text)
      const place = placeOf(thread)
      if (thread.status === 'resolved') done.push(thread)
      else if (place.detached) gone.push(thread)
      else open.push({ thread, from: place.from, to: place.to })
    }
    open.sort((a, b) => a.from - b.from || a.to - b.to || a.thread.created_at.localeCompare(b.thread.created_at))
    placeIn(openList, open.map((o) => o.thread.id))
    placeIn(detachedList, gone.map((t) => t.id))
    placeIn(resolvedList, done.map((t) => t.id))
    detached.hidden = gone.length === 0
    resolved.hidden = done.length === 0
    resolvedSummary.textContent = `Resolved (${done.length})`
    empty.hidden = threads.size > 0
    count.textContent = open.length ? `${open.length} open` : ''
    highlights.refresh()
  }

  let rerenderQueued = false
  const scheduleRerender = () => {
    if (rerenderQueued) return
    rerenderQueued = true
    requestAnimationFrame(() => { rerenderQueued = false; if (alive) rerenderAll() })
  }
  const textObserver = () => scheduleRerender()
  ytext.observe(textObserver)

  // -- selection <-> thread -------------------------------------------------------------------
  function setActive (id, { scroll = false } = {}) {
    activeId = id
    for (const [threadId, entry] of cards) entry.card.classList.toggle('cmt-active', threadId === id)
    highlights.refresh()
    if (id && scroll) cards.get(id)?.card.scrollIntoView({ block: 'nearest', behavior: 'smooth' })
  }

  function selectThread (id, focusEditor = false) {
    const thread = threads.get(id)
    if (!thread) return
    setActive(id)
    const place = placeOf(thread)
    if (!place.known || place.detached) return
    view.dispatch({ selection: { anchor: place.from, head: place.to }, scrollIntoView: true })
    if (focusEditor) view.focus()
  }

  // -- server ---------------------------------------------------------------------------------
  function remember (thread) {
    threads.set(thread.id, thread)
    people.add(thread.created_by)
    for (const comment of thread.comments) {
      people.add(comment.author)
      for (const mention of comment.mentions) people.add(mention)
    }
  }

  /** Owners may list the document's access entries: more people to @mention. */
  async function loadPeople () {
    if (role !== 'owner') return
    try {
      const access = await api.get(`${base}/access`)
      for (const entry of access.entries ?? []) people.add(entry.user)
    } catch {
      // suggestions are a convenience: comment authors are still offered
    }
  }

  async function loadAll () {
    try {
      const listed = await api.get(`${base}/threads?status=all`)
      if (!alive) return
      threads.clear()
      for (const thread of listed.threads) remember(thread)
      rerenderAll()
    } catch (err) {
      fail(err)
    }
  }

  async function refetch (id) {
    try {
      const thread = await api.get(`${base}/threads/${id}`)
      if (!alive) return
      remember(thread)
    } catch (err) {
      if (err.status === 404) {
        threads.delete(id)
        cards.get(id)?.card.remove()
        cards.delete(id)
      } else {
        fail(err)
      }
    }
    rerenderAll()
  }

  async function sendReply (id, text) {
    const comments = threads.get(id)?.comments ?? []
    const last = [...comments].reverse().find((c) => !c.deleted)
    await api.post(`${base}/threads/${id}/comments`, { body: text, reply_to: last?.id })
    await refetch(id)
  }

  /** POST the new thread; retried while the server has not received our latest edits yet. */
  async function createThread (anchor, body) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await api.post(`${base}/threads`, { root: ROOT, anchor, body })
      } catch (err) {
        const unsynced = err.status === 422 && /anchor/.test(`${err.error} ${err.body?.field}`) && attempt < 12
        if (!unsynced) throw err
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
  }

  function closeComposer (refocus = true) {
    if (!composer) return
    composer.destroy()
    composer = null
    composerSlot.replaceChildren()
    if (refocus) view.focus()
  }

  function openComposer () {
    if (!canComment || !alive) return
    const selection = view.state.selection.main
    if (selection.empty) return
    closeComposer(false)
    const { from, to } = selection
    const anchor = anchorOf(ytext, from, to)
    const quote = view.state.sliceDoc(from, to)
    composer = textForm({
      label: 'Comment on the selected text',
      submitLabel: 'Comment',
      users: ctx.users,
      className: 'cmt-composer',
      onCancel: () => closeComposer(),
      onSubmit: async (text) => {
        const thread = await createThread(anchor, text)
        remember(thread)
        closeComposer(false)
        rerenderAll()
        setActive(thread.id, { scroll: true })
      }
    })
    composerSlot.replaceChildren(el('blockquote', { class: 'cmt-quote', text: quote }), composer)
    composer.focusInput()
  }

  // events missed while this tab slept or was offline: catch up when it is back
  const catchUp = () => { if (document.visibilityState === 'visible') loadAll() }
  document.addEventListener('visibilitychange', catchUp)
  window.addEventListener('online', catchUp)
  loadAll()
  loadPeople()

  return {
    onDocumentEvent ({ kind, data }) {
      if (!alive || typeof kind !== 'string' || !kind.startsWith('comment.')) return
      const thread = data?.thread
      const id = typeof thread === 'string' ? thread : thread?.id
      if (id) refetch(id)
      else loadAll()
    },
    destroy () {
      alive = false
      document.removeEventListener('visibilitychange', catchUp)
      window.removeEventListener('online', catchUp)
      closeComposer(false)
      ytext.unobserve(textObserver)
      highlights.destroy()
      for (const entry of cards.values()) entry.reply?.destroy()
      root.replaceChildren()
      root.classList.remove('cmt-margin')
    }
  }
}
