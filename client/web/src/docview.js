// The document page: header (title, role badge, save state, participants, History, Share), the
// formatting toolbar, the editor on the Y.Text root `content`, and the comments margin's container.
import * as Y from 'yjs'
import { documentPath, rank } from './api.js'
import { createEditor, formattingToolbar } from './editor.js'
import { lightColor } from './identity.js'
import { CONTENT_ROOT } from './roots.js'
import { openSharePanel } from './share.js'
import { openDocument } from './sync.js'
import { h } from './ui.js'

export { CONTENT_ROOT }

const STATUS_TEXT = {
  connecting: 'Connecting…',
  saving: 'Saving…',
  saved: 'Saved',
  offline: 'Offline',
  refused: 'Not saved',
  closed: 'Disconnected'
}

export function docHash (docName, suffix = '') {
  return '#/doc/' + encodeURIComponent(docName) + suffix
}

function statusText ({ state, unsaved, detail }, readOnly) {
  if (state === 'offline' && unsaved) return 'Offline - changes kept'
  if (state === 'saved' && readOnly) return 'Up to date'
  if (state === 'refused') return `Not saved: ${detail}`
  return STATUS_TEXT[state] || state
}

function renderParticipants (list, awareness, selfId) {
  const people = []
  for (const [clientId, state] of awareness.getStates()) {
    if (state && state.user && state.user.name) people.push({ clientId, ...state.user })
  }
  people.sort((a, b) => (a.clientId === selfId ? -1 : b.clientId === selfId ? 1 : a.name.localeCompare(b.name)))
  list.replaceChildren(...people.map((person) => h('li', { class: 'participant', title: person.name },
    h('span', { class: 'dot', style: `background:${person.color || '#888'}`, 'aria-hidden': 'true' }),
    h('span', { class: 'name' }, person.clientId === selfId ? `${person.name} (you)` : person.name))))
  list.setAttribute('aria-label', `${people.length} ${people.length === 1 ? 'person' : 'people'} here`)
}

/**
 * Builds the page into `root` and connects. Resolves to
 * `{view, ydoc, ytext, commentsRoot, setEventHandler(fn), destroy()}`.
 */
export async function mountDocumentView ({ root, docName, api, user, role, token, local, onSignInAgain }) {
  const readOnly = rank(role) < rank('editor')
  const ydoc = new Y.Doc()
  const ytext = ydoc.getText(CONTENT_ROOT)
  let view = null
  let eventHandler = null

  const status = h('span', { class: 'save-status', role: 'status', 'aria-live': 'polite', 'data-state': 'connecting' }, 'Connecting…')
  const participants = h('ul', { class: 'participants', 'aria-label': 'People here' })
  const banner = h('div', { class: 'banner', role: 'alert', hidden: true })
  const actions = h('div', { class: 'doc-actions' },
    rank(role) >= rank('editor') ? h('a', { class: 'button secondary', href: docHash(docName, '/history') }, 'History') : null,
    rank(role) >= rank('owner')
      ? h('button', { type: 'button', class: 'secondary share-button', onclick: () => openSharePanel({ docName, api, local }) }, 'Share')
      : null)
  const header = h('header', { class: 'topbar doc-topbar' },
    h('a', { class: 'home', href: '#/', 'aria-label': 'All documents' }, '← Documents'),
    h('h1', { class: 'doc-title' }, docName),
    readOnly
      ? h('span', { class: 'badge view-only', title: role === 'commenter' ? 'You can comment but not change the text' : 'You can read this document but not change it' },
        role === 'commenter' ? 'View only · can comment' : 'View only')
      : null,
    status,
    participants,
    actions)
  const editorHost = h('div', { class: 'editor-host' })
  const toolbar = formattingToolbar(() => view, readOnly)
  const commentsRoot = h('aside', { id: 'comments', class: 'comments-margin', 'aria-label': 'Comments' })
  const layout = h('div', { class: 'doc-layout' },
    h('main', { class: 'editor-column', 'aria-label': 'Document' }, toolbar, editorHost),
    commentsRoot)
  root.replaceChildren(header, banner, layout)
  document.title = `${docName} · cocreate`

  const connection = await openDocument({
    docName,
    ydoc,
    token,
    readOnly,
    onStatus (now) {
      status.dataset.state = now.state
      status.dataset.unsaved = String(now.unsaved)
      status.textContent = statusText(now, readOnly)
      if (now.state === 'closed') showClosed(now)
    },
    onEvent (event) {
      if (eventHandler) eventHandler(event)
    }
  })
  const awareness = connection.provider.awareness
  awareness.setLocalStateField('user', { id: user.id, name: user.name, color: user.color, colorLight: lightColor(user.color) })
  const rerender = () => renderParticipants(participants, awareness, ydoc.clientID)
  awareness.on('change', rerender)
  rerender()
  view = createEditor({ parent: editorHost, ytext, awareness, readOnly })

  function showClosed ({ code, detail }) {
    banner.hidden = false
    let action = h('a', { class: 'button secondary', href: '#/' }, 'Back to the documents')
    if (code === 4404) {
      action = h('button', {
        type: 'button',
        onclick: async () => {
          await connection.discardLocalCopy()
          location.reload()
        }
      }, 'Discard my copy and reload')
    } else if (code === 4401) {
      action = h('button', { type: 'button', onclick: () => onSignInAgain() }, 'Sign in again')
    }
    banner.replaceChildren(h('p', {}, detail), action)
  }

  return {
    view,
    ydoc,
    ytext,
    commentsRoot,
    connection,
    setEventHandler (handler) {
      eventHandler = handler
    },
    destroy () {
      awareness.off('change', rerender)
      view.destroy()
      connection.destroy()
      ydoc.destroy()
    }
  }
}
