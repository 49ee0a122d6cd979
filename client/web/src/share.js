// The owner's Share panel: who has access (grant, change, revoke) and guest invites (create with
// role, expiry and uses; copy the link; revoke).
import { documentPath } from './api.js'
import { copyText, formatTime, h } from './ui.js'

const GRANTABLE = ['viewer', 'commenter', 'editor', 'owner']
const INVITE_ROLES = ['viewer', 'commenter', 'editor']
const EXPIRIES = [['1d', '1 day'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days']]

function select (id, options, selected) {
  return h('select', { id },
    options.map((option) => {
      const [value, label] = Array.isArray(option) ? option : [option, option]
      return h('option', { value, selected: value === selected }, label)
    }))
}

export function inviteLink (code) {
  return `${location.origin}/#invite=${encodeURIComponent(code)}`
}

export function openSharePanel ({ docName, api, local }) {
  const message = h('p', { class: 'share-message', role: 'status', 'aria-live': 'polite' })
  const accessList = h('ul', { class: 'access-list', 'aria-label': 'People with access' })
  const inviteList = h('ul', { class: 'invite-list', 'aria-label': 'Invites' })
  const newLink = h('div', { class: 'new-invite', hidden: true })
  const say = (text) => { message.textContent = text }
  const fail = (exc) => say(`Could not do that: ${exc.message}`)

  async function loadAccess () {
    const { entries } = await api.get(documentPath(docName, '/-/access'))
    accessList.replaceChildren(...(entries.length ? entries : []).map((entry) => {
      const roleSelect = select(`role-${entry.user}`, GRANTABLE, entry.role)
      roleSelect.setAttribute('aria-label', `Role of ${entry.user}`)
      roleSelect.addEventListener('change', () => grant(entry.user, roleSelect.value))
      return h('li', {}, h('span', { class: 'who' }, entry.user), roleSelect,
        h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove ${entry.user}`, onclick: () => revoke(entry.user) }, 'Remove'))
    }))
    if (!entries.length) accessList.append(h('li', { class: 'empty' }, 'No one has been added yet.'))
  }

  async function loadInvites () {
    if (local) {
      inviteList.replaceChildren(h('li', { class: 'empty' }, 'Invites need a server secret (local mode has no sign-in).'))
      return
    }
    const { invites } = await api.get(documentPath(docName, '/-/invites'))
    inviteList.replaceChildren(...invites.map((invite) => h('li', { class: `invite invite-${invite.status}` },
      h('span', {}, `${invite.role} · ${invite.status} · used ${invite.uses}${invite.max_uses ? ` of ${invite.max_uses}` : ''} · until ${formatTime(invite.expires_at)}`),
      invite.status === 'active' || invite.status === 'exhausted' // revoking also ends guests' access
        ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Revoke ${invite.role} invite`, onclick: () => revokeInvite(invite.id) }, 'Revoke')
        : null)))
    if (!invites.length) inviteList.append(h('li', { class: 'empty' }, 'No invites yet.'))
  }

  async function grant (user, role) {
    try {
      await api.put(documentPath(docName, `/-/access/${encodeURIComponent(user)}`), { role })
      say(`${user} is now ${role}.`)
      await loadAccess()
    } catch (exc) { fail(exc) }
  }

  async function revoke (user) {
    try {
      await api.delete(documentPath(docName, `/-/access/${encodeURIComponent(user)}`))
      say(`${user} was removed.`)
      await loadAccess()
    } catch (exc) { fail(exc) }
  }

  async function revokeInvite (id) {
    try {
      await api.delete(documentPath(docName, `/-/invites/${encodeURIComponent(id)}`))
      say('The invite was revoked; links made from it stop working.')
      await loadInvites()
    } catch (exc) { fail(exc) }
  }

  const userInput = h('input', { id: 'grant-user', type: 'text', required: true, autocomplete: 'off', placeholder: 'user id, e.g. ana' })
  const grantRole = select('grant-role', GRANTABLE, 'editor')
  const grantForm = h('form', { class: 'grant-form' },
    h('label', { for: 'grant-user' }, 'Person'), userInput,
    h('label', { for: 'grant-role' }, 'Role'), grantRole,
    h('button', { type: 'submit' }, 'Give access'))
  grantForm.addEventListener('submit', async (event) => {
    event.preventDefault()
    const user = userInput.value.trim()
    if (!user) return
    await grant(user, grantRole.value)
    userInput.value = ''
  })

  const inviteRole = select('invite-role', INVITE_ROLES, 'commenter')
  const inviteExpiry = select('invite-expiry', EXPIRIES, '7d')
  const inviteUses = h('input', { id: 'invite-uses', type: 'number', min: 1, max: 10000, placeholder: 'no limit' })
  const inviteForm = h('form', { class: 'invite-form' },
    h('label', { for: 'invite-role' }, 'Role'), inviteRole,
    h('label', { for: 'invite-expiry' }, 'Expires in'), inviteExpiry,
    h('label', { for: 'invite-uses' }, 'Max uses'), inviteUses,
    h('button', { type: 'submit', disabled: local }, 'Create invite link'))
  inviteForm.addEventListener('submit', async (event) => {
    event.preventDefault()
    const body = { role: inviteRole.value, expires_in: inviteExpiry.value, max_uses: inviteUses.value ? Number(inviteUses.value) : null }
    try {
      const invite = await api.post(documentPath(docName, '/-/invites'), body)
      const link = inviteLink(invite.code)
      const field = h('input', { id: 'invite-link', type: 'text', readonly: true, value: link, 'aria-label': 'Invite link' })
      newLink.hidden = false
      newLink.replaceChildren(
        h('label', { for: 'invite-link' }, 'Send this link (shown once):'), field,
        h('button', {
          type: 'button',
          onclick: async () => say((await copyText(link, field)) ? 'Link copied.' : 'Press Ctrl+C to copy the selected link.')
        }, 'Copy link'))
      await loadInvites()
    } catch (exc) { fail(exc) }
  })

  const close = h('button', { type: 'button', class: 'secondary close', onclick: () => dialog.close() }, 'Close')
  const dialog = h('dialog', { class: 'share-panel', 'aria-labelledby': 'share-title' },
    h('h2', { id: 'share-title' }, `Share “${docName}”`),
    message,
    h('section', { 'aria-labelledby': 'access-title' }, h('h3', { id: 'access-title' }, 'People with access'), accessList, grantForm),
    h('section', { 'aria-labelledby': 'invites-title' }, h('h3', { id: 'invites-title' }, 'Invite links'), inviteForm, newLink, inviteList),
    h('div', { class: 'actions' }, close))
  dialog.addEventListener('close', () => dialog.remove())
  document.getElementById('dialogs').append(dialog)
  dialog.showModal()
  Promise.all([loadAccess(), loadInvites()]).catch(fail)
  return dialog
}
