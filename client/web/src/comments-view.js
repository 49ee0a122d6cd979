// DOM for the comment margin: text forms, thread cards and their comments (no state, no I/O).
import { attachMentions, renderBody } from './comments-mentions.js'

export const REACTIONS = ['👍', '❤️', '🎉', '😄', '👀', '✅']
let formCounter = 0

export function el (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'class') node.className = value
    else if (key === 'text') node.textContent = value
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else if (key in node && typeof value !== 'string') node[key] = value
    else node.setAttribute(key, value === true ? '' : value)
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false))
  return node
}

/**
 * A labelled text area with submit/cancel buttons: Enter submits, Shift+Enter is a new line,
 * Escape cancels (`onEscape(textarea)`, default `onCancel`). `onSubmit(text)` may return a
 * promise; the form is busy meanwhile and shows the error if it fails.
 */
export function textForm ({ label, submitLabel, value = '', onSubmit, onCancel, onEscape = onCancel, users, className }) {
  const id = `cmt-form-${++formCounter}`
  const textarea = el('textarea', { id, class: 'cmt-input', rows: '2', placeholder: label })
  textarea.value = value
  const error = el('p', { class: 'cmt-error', role: 'alert', hidden: true })
  const submit = el('button', { type: 'submit', class: 'cmt-primary', text: submitLabel })
  const cancel = onCancel ? el('button', { type: 'button', text: 'Cancel', onclick: () => onCancel() }) : null
  const form = el('form', { class: `cmt-form ${className ?? ''}` },
    el('label', { for: id, class: 'cmt-sr', text: label }),
    textarea, error, el('div', { class: 'cmt-form-buttons' }, submit, cancel))
  const mentions = attachMentions(textarea, users)
  const send = async () => {
    const text = textarea.value
    if (!text.trim() || form.dataset.busy) return
    form.dataset.busy = '1'
    submit.disabled = true
    error.hidden = true
    try {
      await onSubmit(text)
      textarea.value = ''
    } catch (err) {
      error.textContent = err.message || String(err)
      error.hidden = false
    } finally {
      delete form.dataset.busy
      submit.disabled = false
    }
  }
  textarea.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault()
      send()
    } else if (event.key === 'Escape' && onEscape) {
      event.preventDefault()
      onEscape(textarea)
    }
  })
  form.addEventListener('submit', (event) => { event.preventDefault(); send() })
  form.focusInput = () => textarea.focus()
  form.destroy = () => mentions.destroy()
  return form
}

function when (iso) {
  if (!iso) return ''
  const date = new Date(iso)
  const sameDay = date.toDateString() === new Date().toDateString()
  return sameDay ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : date.toLocaleString()
}

function authorBadge (id, who) {
  const known = who(id)
  return el('span', { class: 'cmt-author' },
    el('span', { class: 'cmt-dot', style: `background:${known.color}`, 'aria-hidden': 'true' }),
    known.name)
}

/**
 * One comment. `ctx`: {me, canComment, canModerate, who(id), editing, react(comment, emoji, on),
 * startEdit(comment), saveEdit(comment, text), cancelEdit(), remove(comment), users()}
 */
export function commentItem (comment, ctx) {
  if (comment.deleted) {
    return el('li', { class: 'cmt-comment cmt-deleted', 'data-comment-id': comment.id },
      el('p', { class: 'cmt-body', text: 'Comment deleted' }))
  }
  const mine = comment.author === ctx.me
  const header = el('div', { class: 'cmt-comment-head' }, authorBadge(comment.author, ctx.who),
    el('time', { datetime: comment.created_at, text: when(comment.created_at) }),
    comment.edited_at ? el('span', { class: 'cmt-edited', text: '(edited)' }) : null)
  let body
  if (ctx.editing === comment.id) {
    body = textForm({
      label: 'Edit comment',
      submitLabel: 'Save',
      value: comment.body,
      users: ctx.users,
      onSubmit: (text) => ctx.saveEdit(comment, text),
      onCancel: () => ctx.cancelEdit()
    })
    queueMicrotask(() => body.focusInput())
  } else {
    body = el('p', { class: 'cmt-body' }, renderBody(comment.body))
  }
  const reactions = el('div', { class: 'cmt-reactions' },
    comment.reactions.map((r) => {
      const pressed = r.users.includes(ctx.me)
      return el('button', {
        type: 'button',
        class: 'cmt-reaction',
        'aria-pressed': String(pressed),
        'aria-label': `${r.emoji} ${r.count}: ${r.users.join(', ')}`,
        title: r.users.join(', '),
        disabled: !ctx.canComment,
        onclick: () => ctx.react(comment, r.emoji, !pressed)
      }, `${r.emoji} ${r.count}`)
    }),
    ctx.canComment ? reactionPicker(comment, ctx) : null)
  const actions = el('div', { class: 'cmt-comment-actions' },
    mine && ctx.canComment && ctx.editing !== comment.id
      ? el('button', { type: 'button', class: 'cmt-link', text: 'Edit', onclick: () => ctx.startEdit(comment) })
      : null,
    (mine && ctx.canComment) || ctx.canModerate
      ? el('button', { type: 'button', class: 'cmt-link', text: 'Delete', onclick: () => ctx.remove(comment) })
      : null)
  return el('li', { class: 'cmt-comment', 'data-comment-id': comment.id }, header, body, reactions, actions)
}

function reactionPicker (comment, ctx) {
  const mine = new Set(comment.reactions.filter((r) => r.users.includes(ctx.me)).map((r) => r.emoji))
  const buttons = REACTIONS.filter((e) => !mine.has(e)).map((emoji) =>
    el('button', {
      type: 'button',
      class: 'cmt-reaction-choice',
      'aria-label': `React with ${emoji}`,
      onclick: (event) => {
        event.target.closest('details').open = false
        ctx.react(comment, emoji, true)
      }
    }, emoji))
  return el('details', { class: 'cmt-react-menu' },
    el('summary', { 'aria-label': 'Add a reaction', title: 'Add a reaction', text: '☺+' }),
    el('div', { class: 'cmt-react-choices' }, buttons))
}

/** The body of a thread card (everything except its persistent reply form). */
export function threadBody (thread, place, ctx) {
  const quote = place.quote || thread.quote || thread.original_quote || ''
  const status = thread.status === 'resolved'
    ? el('p', { class: 'cmt-status', text: `Resolved by ${ctx.who(thread.resolved_by).name}` })
    : place.detached
      ? el('p', { class: 'cmt-status', text: 'Its text was deleted' })
      : null
  const toggle = ctx.canComment
    ? el('button', {
      type: 'button',
      class: 'cmt-link cmt-resolve',
      text: thread.status === 'resolved' ? 'Reopen' : 'Resolve',
      onclick: (event) => { event.stopPropagation(); ctx.setStatus(thread, thread.status !== 'resolved') }
    })
    : null
  return [
    el('div', { class: 'cmt-thread-head' },
      el('blockquote', { class: 'cmt-quote', title: 'Commented text' }, quote),
      toggle),
    status,
    el('ol', { class: 'cmt-comments' }, thread.comments.map((c) => commentItem(c, ctx)))
  ]
}
