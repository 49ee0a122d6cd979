// Small DOM helpers: an element builder, an accessible modal form, and copying text.

/**
 * `h('button', {class: 'x', onclick: fn, 'aria-label': 'Close'}, 'text', child)`: attributes starting
 * with `on` become listeners; `false`/`null` attributes are skipped; children may be strings or nodes.
 */
export function h (tag, attributes = {}, ...children) {
  const element = document.createElement(tag)
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === false || value === null || value === undefined) continue
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value)
    else if (key === 'value') element.value = value
    else element.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    element.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return element
}

/** Ask for one line of text in a modal dialog; resolves to the trimmed text, or null if cancelled. */
export function askText ({ title, label, value = '', submit = 'OK', cancellable = true }) {
  return new Promise((resolve) => {
    const input = h('input', { id: 'ask-input', type: 'text', value, required: true, maxlength: 100, autocomplete: 'off' })
    const form = h('form', { method: 'dialog', class: 'ask-form' },
      h('h2', { id: 'ask-title' }, title),
      h('label', { for: 'ask-input' }, label),
      input,
      h('div', { class: 'actions' },
        cancellable ? h('button', { type: 'button', class: 'secondary', onclick: () => finish(null) }, 'Cancel') : null,
        h('button', { type: 'submit' }, submit)))
    const dialog = h('dialog', { 'aria-labelledby': 'ask-title' }, form)
    let done = false
    function finish (result) {
      if (done) return
      done = true
      dialog.close()
      dialog.remove()
      resolve(result)
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const text = input.value.trim()
      if (text) finish(text)
    })
    dialog.addEventListener('cancel', (event) => {
      if (!cancellable) event.preventDefault()
      else finish(null)
    })
    document.getElementById('dialogs').append(dialog)
    dialog.showModal()
    input.focus()
    input.select()
  })
}

export async function copyText (text, input) {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    if (input) {
      input.focus()
      input.select()
    }
    return false
  }
}

export function formatTime (value) {
  if (!value) return ''
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value)
  return isNaN(date) ? String(value) : date.toLocaleString()
}
