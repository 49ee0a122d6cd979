// cocreate's browser app: credentials from the URL fragment, hash routes, and the two extension
// points where the comments margin and the facilitator view plug in.
//
// Routes: `#/` documents; `#/doc/<encodeURIComponent(name)>` the document; `.../history` the
// facilitator view; `#token=TOKEN` signs in (kept in localStorage, removed from the address bar);
// `#invite=CODE` redeems a guest invite and opens its document.
//
// EXTENSION POINTS (owned by the comments/facilitator modules, called only from here):
// - Document view: `mountComments({root, view, ydoc, ytext, docName, api, user, role})` from
//   ./comments.js. `root` is the right-hand margin `<aside id="comments">` (under the editor on
//   phones), `view` the CodeMirror EditorView, `ytext` the Y.Text root named CONTENT_ROOT
//   ('content', exported by ./roots.js: use it as the `root` of comment threads).
//   Returns `{onDocumentEvent(event), destroy()}`; every document event the server sends on the
//   websocket (message 103) is passed as `onDocumentEvent({kind, data})`.
// - `#/doc/<name>/history`: `mountFacilitator({root, docName, api, user, role})` from
//   ./facilitator.js, returning `{destroy()}`. The History link is shown to editors and owners.
// - `api`: `api.get(path)`, `api.post(path, body)`, `api.patch`, `api.put`, `api.delete` resolve to
//   parsed JSON (null for 204) or throw an Error with `.status`, `.error`, `.detail` and `.body`
//   (the server's JSON error). It sends the document's token as `Authorization: Bearer`.
// - `user` = `{id, name, color}`; `role` = 'viewer' | 'commenter' | 'editor' | 'owner'.
import { createApi, documentTokens, forgetDocumentToken, rank, roleOn, setDocumentToken, setSignedInToken, signedInToken, tokenFor } from './api.js'
import { mountComments } from './comments.js'
import { mountDocumentList } from './doclist.js'
import { docHash, mountDocumentView } from './docview.js'
import { mountFacilitator } from './facilitator.js'
import { askName, storedName, userFrom } from './identity.js'
import { h } from './ui.js'

const app = document.getElementById('app')
let mounted = [] // things with destroy() for the current route
let generation = 0

function unmount () {
  for (const part of mounted.reverse()) {
    try {
      part.destroy()
    } catch (exc) {
      console.warn('destroying the previous page failed', exc)
    }
  }
  mounted = []
}

export function parseRoute (hash) {
  if (hash.startsWith('#token=')) return { name: 'token', token: decodeURIComponent(hash.slice(7)) }
  if (hash.startsWith('#invite=')) return { name: 'invite', code: decodeURIComponent(hash.slice(8)) }
  const match = /^#\/doc\/([^/]+)(\/history)?$/.exec(hash)
  if (match) return { name: match[2] ? 'history' : 'document', docName: decodeURIComponent(match[1]) }
  return { name: 'list' }
}

function userBar (me, user) {
  const bar = h('div', { class: 'user-bar' }, h('span', { class: 'dot', style: `background:${user.color}`, 'aria-hidden': 'true' }), h('span', {}, user.name))
  if (me.local) {
    bar.append(h('button', { type: 'button', class: 'link-button', onclick: async () => { await askName(); show() } }, 'Change name'))
  } else if (signedInToken()) {
    bar.append(h('button', { type: 'button', class: 'link-button', onclick: () => { setSignedInToken(''); show() } }, 'Sign out'))
  }
  return bar
}

function showSignIn (reason) {
  const input = h('input', { id: 'token-input', type: 'password', required: true, autocomplete: 'off' })
  const form = h('form', { class: 'sign-in' },
    h('label', { for: 'token-input' }, 'Access token'), input, h('button', { type: 'submit' }, 'Sign in'))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    setSignedInToken(input.value.trim())
    show()
  })
  const invited = Object.keys(documentTokens())
  app.replaceChildren(h('header', { class: 'topbar' }, h('h1', {}, 'cocreate')),
    h('main', { class: 'list-page' },
      h('h2', {}, 'Sign in'),
      h('p', {}, reason || 'This server needs an access token. Paste the one you were given, or open your invite link.'),
      form,
      invited.length ? h('h2', {}, 'Shared with you') : null,
      invited.length ? h('ul', { class: 'doc-list' }, invited.map((name) => h('li', { class: 'doc-row' }, h('a', { class: 'doc-link', href: docHash(name) }, name)))) : null))
}

function showProblem (title, text) {
  app.replaceChildren(h('header', { class: 'topbar' }, h('a', { class: 'home', href: '#/' }, '← Documents')),
    h('main', { class: 'list-page' }, h('h2', {}, title), h('p', { role: 'alert' }, text)))
}

async function identify (api) {
  try {
    return await api.get('/api/me')
  } catch (exc) {
    if (exc.status === 401) {
      showSignIn(api.token ? `Your token was not accepted (${exc.message}). Paste a new one.` : '')
      return null
    }
    throw exc
  }
}

async function redeem (code) {
  const input = h('input', { id: 'guest-name', type: 'text', required: true, maxlength: 100, value: storedName() })
  const message = h('p', { role: 'status', 'aria-live': 'polite' })
  const form = h('form', { class: 'sign-in' }, h('label', { for: 'guest-name' }, 'Your name'), input, h('button', { type: 'submit' }, 'Join'))
  app.replaceChildren(h('header', { class: 'topbar' }, h('h1', {}, 'cocreate')),
    h('main', { class: 'list-page' }, h('h2', {}, 'You were invited to a document'), form, message))
  input.focus()
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const name = input.value.trim()
    if (!name) return
    try {
      const result = await createApi().post('/api/invites/redeem', { code, name })
      localStorage.setItem('cocreate.name', name)
      setDocumentToken(result.document, result.token)
      location.replace(docHash(result.document))
    } catch (exc) {
      message.textContent = exc.status === 410 || exc.status === 404
        ? `This invite cannot be used: ${exc.message}.`
        : `Could not join: ${exc.message}`
    }
  })
}

async function route () {
  const mine = ++generation
  unmount()
  const where = parseRoute(location.hash)
  if (where.name === 'token') {
    setSignedInToken(where.token)
    history.replaceState(null, '', location.pathname + '#/')
    return route()
  }
  if (where.name === 'invite') {
    history.replaceState(null, '', location.pathname + '#/')
    return redeem(where.code)
  }
  const docName = where.docName || ''
  const api = createApi(tokenFor(docName))
  const me = await identify(api)
  if (!me || mine !== generation) return
  const user = await userFrom(me)
  if (mine !== generation) return
  if (where.name === 'list') {
    mounted.push(await mountDocumentList({ root: app, api, me, userBar: userBar(me, user) }))
    return
  }
  const role = roleOn(me, docName)
  if (rank(role) < rank('viewer')) return showProblem('No access', `You have no access to “${docName}”.`)
  if (where.name === 'history') {
    const root = h('main', { id: 'facilitator', class: 'facilitator', 'aria-label': 'History' })
    app.replaceChildren(h('header', { class: 'topbar' },
      h('a', { class: 'home', href: docHash(docName), 'aria-label': 'Back to the document' }, '← Back to the document'),
      h('h1', { class: 'doc-title' }, `History of ${docName}`)), root)
    document.title = `History of ${docName} · cocreate`
    mounted.push(mountFacilitator({ root, docName, api, user, role }))
    return
  }
  const signInAgain = () => {
    if (documentTokens()[docName]) forgetDocumentToken(docName)
    else setSignedInToken('')
    show()
  }
  const page = await mountDocumentView({ root: app, docName, api, user, role, token: api.token, local: me.local, onSignInAgain: signInAgain })
  if (mine !== generation) return page.destroy()
  mounted.push(page)
  // The comments load once the server has the document (the first sync creates a new one).
  if (!page.connection.provider.synced) {
    await new Promise((resolve) => page.connection.provider.once('synced', resolve))
    if (mine !== generation) return
  }
  const comments = mountComments({ root: page.commentsRoot, view: page.view, ydoc: page.ydoc, ytext: page.ytext, docName, api, user, role })
  page.setEventHandler((event) => comments.onDocumentEvent(event))
  mounted.push(comments)
}

function show () {
  route().catch((exc) => showProblem('Something went wrong', exc.message))
}

window.addEventListener('hashchange', show)
show()
