// @mention autocomplete for comment text areas, and mention-aware rendering of comment bodies.

// The server's rule (server/comment_shapes.py): `@id`, not preceded by a word character, @ or dot.
const MENTION = /(^|[^\w@.])@([A-Za-z0-9][A-Za-z0-9_.-]{0,63})/g
let listCounter = 0

/** A body as DOM nodes, with `@id` mentions wrapped in spans. */
export function renderBody (body) {
  const fragment = document.createDocumentFragment()
  let last = 0
  for (const match of body.matchAll(MENTION)) {
    const at = match.index + match[1].length
    fragment.append(body.slice(last, at))
    const span = document.createElement('span')
    span.className = 'cmt-mention'
    span.textContent = '@' + match[2].replace(/[.-]+$/, '')
    fragment.append(span)
    last = at + span.textContent.length
  }
  fragment.append(body.slice(last))
  return fragment
}

/**
 * Suggest known user ids while an `@word` is being typed in `textarea`: ArrowUp/ArrowDown move,
 * Enter or Tab picks, Escape closes the list. `users()` returns the ids to offer.
 * Returns {isOpen(), destroy()}; while the list is open it consumes those keys.
 */
export function attachMentions (textarea, users) {
  const list = document.createElement('ul')
  list.className = 'cmt-mention-list'
  list.setAttribute('role', 'listbox')
  list.id = `cmt-mentions-${++listCounter}`
  list.hidden = true
  textarea.after(list)
  textarea.setAttribute('aria-autocomplete', 'list')
  textarea.setAttribute('aria-controls', list.id)
  let options = []
  let selected = 0

  const partial = () => {
    const before = textarea.value.slice(0, textarea.selectionStart)
    const match = /(^|[^\w@.])@([A-Za-z0-9_.-]{0,63})$/.exec(before)
    return match ? match[2] : null
  }
  const close = () => {
    list.hidden = true
    options = []
    textarea.removeAttribute('aria-activedescendant')
  }
  const pick = (id) => {
    const cursor = textarea.selectionStart
    const word = partial() ?? ''
    const start = cursor - word.length
    textarea.value = textarea.value.slice(0, start) + id + ' ' + textarea.value.slice(cursor)
    textarea.selectionStart = textarea.selectionEnd = start + id.length + 1
    close()
    textarea.focus()
  }
  const show = () => {
    const word = partial()
    if (word === null) return close()
    const lower = word.toLowerCase()
    options = [...new Set(users())].filter((id) => id.toLowerCase().startsWith(lower) && id !== word).slice(0, 6)
    if (!options.length) return close()
    selected = Math.min(selected, options.length - 1)
    list.replaceChildren(...options.map((id, i) => {
      const item = document.createElement('li')
      item.id = `${list.id}-${i}`
      item.setAttribute('role', 'option')
      item.setAttribute('aria-selected', String(i === selected))
      item.textContent = '@' + id
      item.addEventListener('mousedown', (event) => { event.preventDefault(); pick(id) })
      return item
    }))
    textarea.setAttribute('aria-activedescendant', `${list.id}-${selected}`)
    list.hidden = false
  }
  const onKey = (event) => {
    if (list.hidden) return
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      selected = (selected + (event.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length
      show()
    } else if (event.key === 'Enter' || event.key === 'Tab') {
      pick(options[selected])
    } else if (event.key === 'Escape') {
      close()
    } else {
      return
    }
    event.preventDefault()
    event.stopImmediatePropagation()
  }
  textarea.addEventListener('keydown', onKey)
  textarea.addEventListener('input', show)
  textarea.addEventListener('blur', close)
  return {
    isOpen: () => !list.hidden,
    destroy () {
      textarea.removeEventListener('keydown', onKey)
      textarea.removeEventListener('input', show)
      textarea.removeEventListener('blur', close)
      list.remove()
    }
  }
}
