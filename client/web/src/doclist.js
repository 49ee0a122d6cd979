// The start page: the documents you may open, creating one, renaming (owners), and the ones
// reached through invite links.
import { documentPath, documentTokens, rank, roleOn } from './api.js'
import { docHash } from './docview.js'
import { askText, formatTime, h } from './ui.js'

const PAGE_SIZE = 100

export async function mountDocumentList ({ root, api, me, userBar }) {
  const message = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' })
  const list = h('ul', { class: 'doc-list', 'aria-label': 'Documents' })
  const nameInput = h('input', { id: 'new-doc-name', type: 'text', required: true, autocomplete: 'off', placeholder: 'team/workshop-notes', maxlength: 200 })
  const createForm = h('form', { class: 'create-form' },
    h('label', { for: 'new-doc-name' }, 'New document'), nameInput,
    h('button', { type: 'submit' }, 'Create'))
  const more = h('button', { type: 'button', class: 'secondary more', hidden: true, onclick: () => loadPage(more.dataset.after) }, 'More documents')
  document.title = 'Documents · cocreate'
  root.replaceChildren(
    h('header', { class: 'topbar' }, h('h1', {}, 'cocreate'), userBar),
    h('main', { class: 'list-page' }, createForm, message, h('h2', {}, 'Documents'), list, more))
  const listed = new Set()

  async function loadPage (after = '') {
    let page = { documents: [], next: null }
    try {
      page = await api.get(`/api/documents?limit=${PAGE_SIZE}${after ? `&after=${encodeURIComponent(after)}` : ''}`)
      message.textContent = ''
    } catch (exc) {
      message.textContent = `Could not load the documents: ${exc.message}`
    }
    list.querySelector('.empty')?.remove()
    list.append(...page.documents.map((doc) => {
      listed.add(doc.name)
      return row(doc.name, `changed ${formatTime(doc.updated_at)}`, rank(roleOn(me, doc.name)) >= rank('owner'))
    }))
    more.hidden = !page.next
    more.dataset.after = page.next || ''
    return page
  }

  async function refresh () {
    listed.clear()
    list.replaceChildren()
    await loadPage()
    const invited = Object.keys(documentTokens()).filter((name) => !listed.has(name))
    list.append(...invited.map((name) => row(name, 'shared with you by invite', false)))
    if (!list.children.length) list.append(h('li', { class: 'empty' }, 'No documents yet: create the first one above.'))
  }

  function row (name, detail, canRename) {
    return h('li', { class: 'doc-row' },
      h('a', { class: 'doc-link', href: docHash(name) }, name),
      h('span', { class: 'detail' }, detail),
      canRename ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Rename ${name}`, onclick: () => rename(name) }, 'Rename') : null)
  }

  async function rename (name) {
    const next = await askText({ title: 'Rename document', label: 'New name', value: name, submit: 'Rename' })
    if (!next || next === name) return
    try {
      await api.patch(documentPath(name), { name: next })
      message.textContent = `Renamed to ${next}.`
    } catch (exc) {
      message.textContent = `Could not rename: ${exc.message}`
    }
    await refresh()
  }

  createForm.addEventListener('submit', async (event) => {
    event.preventDefault()
    const name = nameInput.value.trim()
    if (!name) return
    try {
      await api.post('/api/documents', { name })
      location.hash = docHash(name)
    } catch (exc) {
      message.textContent = exc.status === 409 ? `“${name}” exists already.` : `Could not create it: ${exc.message}`
    }
  })

  await refresh()
  return { destroy () {} }
}
