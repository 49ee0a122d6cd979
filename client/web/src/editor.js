// The editor: CodeMirror 6 on the document's Y.Text through y-codemirror.next, writing Markdown
// with live styling (big headings, bold bold), line wrapping, no gutters, and a formatting toolbar.
import { defaultKeymap } from '@codemirror/commands'
import { markdown } from '@codemirror/lang-markdown'
import { HighlightStyle, syntaxHighlighting } from '@codemirror/language'
import { EditorSelection, EditorState } from '@codemirror/state'
import { EditorView, keymap, placeholder } from '@codemirror/view'
import { tags } from '@lezer/highlight'
import * as Y from 'yjs'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { h } from './ui.js'

const markdownStyle = HighlightStyle.define([
  { tag: tags.heading1, fontSize: '1.6em', fontWeight: '700' },
  { tag: tags.heading2, fontSize: '1.35em', fontWeight: '700' },
  { tag: tags.heading3, fontSize: '1.15em', fontWeight: '700' },
  { tag: [tags.heading4, tags.heading5, tags.heading6], fontWeight: '700' },
  { tag: tags.strong, fontWeight: '700' },
  { tag: tags.emphasis, fontStyle: 'italic' },
  { tag: tags.strikethrough, textDecoration: 'line-through' },
  { tag: tags.link, color: 'var(--link)', textDecoration: 'underline' },
  { tag: tags.url, color: 'var(--muted)' },
  { tag: tags.quote, color: 'var(--muted)', fontStyle: 'italic' },
  { tag: tags.monospace, fontFamily: 'ui-monospace, monospace', fontSize: '0.92em' },
  { tag: [tags.processingInstruction, tags.meta, tags.contentSeparator], color: 'var(--markup)' }
])

const proseTheme = EditorView.theme({
  '&': { fontSize: '1.05rem', backgroundColor: 'var(--paper)' },
  '.cm-content': {
    fontFamily: 'var(--prose-font)',
    lineHeight: '1.6',
    padding: '1.25rem 1.5rem',
    caretColor: 'var(--text)',
    minHeight: '60vh'
  },
  '&.cm-focused': { outline: 'none' },
  '.cm-line': { padding: '0' },
  '.cm-placeholder': { color: 'var(--muted)' }
})

/** Wrap the selection in `mark` (e.g. `**`), or remove it when already wrapped. */
export function toggleWrap (view, mark) {
  const { state } = view
  const changes = state.changeByRange((range) => {
    const before = state.sliceDoc(range.from - mark.length, range.from)
    const after = state.sliceDoc(range.to, range.to + mark.length)
    if (before === mark && after === mark) {
      return {
        changes: [{ from: range.from - mark.length, to: range.from }, { from: range.to, to: range.to + mark.length }],
        range: EditorSelection.range(range.from - mark.length, range.to - mark.length)
      }
    }
    return {
      changes: [{ from: range.from, insert: mark }, { from: range.to, insert: mark }],
      range: EditorSelection.range(range.from + mark.length, range.to + mark.length)
    }
  })
  view.dispatch(state.update(changes, { scrollIntoView: true, userEvent: 'input.format' }))
  view.focus()
  return true
}

/** Toggle `prefix` (e.g. `# `, `- `, `> `) at the start of every selected line. */
export function toggleLinePrefix (view, prefix) {
  const { state } = view
  const lines = new Map()
  for (const range of state.selection.ranges) {
    for (let pos = range.from; pos <= range.to;) {
      const line = state.doc.lineAt(pos)
      lines.set(line.from, line)
      pos = line.to + 1
    }
  }
  const all = [...lines.values()]
  const remove = all.every((line) => line.text.startsWith(prefix))
  const changes = all.map((line) => {
    if (remove) return { from: line.from, to: line.from + prefix.length }
    const existing = /^(#{1,6} |- |> |\d+\. )/.exec(line.text)
    return { from: line.from, to: line.from + (existing ? existing[0].length : 0), insert: prefix }
  })
  view.dispatch({ changes, scrollIntoView: true, userEvent: 'input.format' })
  view.focus()
  return true
}

/** `[selected text](https://)` with the URL part selected, ready to be typed over. */
export function insertLink (view) {
  const { state } = view
  const range = state.selection.main
  const text = state.sliceDoc(range.from, range.to) || 'link text'
  const insert = `[${text}](https://)`
  const urlStart = range.from + text.length + 3
  view.dispatch({
    changes: { from: range.from, to: range.to, insert },
    selection: EditorSelection.range(urlStart, urlStart + 'https://'.length),
    scrollIntoView: true,
    userEvent: 'input.format'
  })
  view.focus()
  return true
}

const FORMATS = [
  { label: 'Bold', text: 'B', keys: 'Mod-b', run: (view) => toggleWrap(view, '**') },
  { label: 'Italic', text: 'I', keys: 'Mod-i', run: (view) => toggleWrap(view, '*') },
  { label: 'Heading', text: 'H', keys: 'Mod-Alt-1', run: (view) => toggleLinePrefix(view, '## ') },
  { label: 'List', text: '• List', keys: 'Mod-Shift-8', run: (view) => toggleLinePrefix(view, '- ') },
  { label: 'Quote', text: '“ Quote', keys: 'Mod-Shift-9', run: (view) => toggleLinePrefix(view, '> ') },
  { label: 'Link', text: 'Link', keys: 'Mod-k', run: insertLink }
]

/**
 * The formatting toolbar: real buttons with labels. One Tab stop (the ARIA toolbar pattern): the
 * arrow keys, Home and End move between the buttons.
 */
export function formattingToolbar (getView, readOnly) {
  const mac = navigator.platform.startsWith('Mac')
  const buttons = FORMATS.map((format, index) => h('button', {
    type: 'button',
    class: `format format-${format.label.toLowerCase()}`,
    'aria-label': format.label,
    'aria-keyshortcuts': format.keys.replace('Mod', mac ? 'Meta' : 'Control').replace(/-/g, '+'),
    title: `${format.label} (${format.keys.replace('Mod', mac ? '⌘' : 'Ctrl').replace(/-/g, '+')})`,
    tabindex: index === 0 ? '0' : '-1',
    disabled: readOnly,
    onmousedown: (event) => event.preventDefault(), // keep the editor's selection
    onclick: () => {
      const view = getView()
      if (view) format.run(view)
    }
  }, format.text))
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Formatting', 'aria-controls': 'editor-text' }, buttons)
  toolbar.addEventListener('keydown', (event) => {
    const at = buttons.indexOf(document.activeElement)
    if (at < 0) return
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: buttons.length - 1 }[event.key]
    if (next === undefined) return
    event.preventDefault()
    const target = buttons[(next + buttons.length) % buttons.length]
    for (const button of buttons) button.tabIndex = button === target ? 0 : -1
    target.focus()
  })
  return toolbar
}

/** An EditorView on `ytext`, sharing cursors through `awareness`; read-only for viewers. */
export function createEditor ({ parent, ytext, awareness, readOnly }) {
  const undoManager = new Y.UndoManager(ytext)
  const state = EditorState.create({
    doc: ytext.toString(),
    extensions: [
      keymap.of([...FORMATS.map((format) => ({ key: format.keys, run: format.run, preventDefault: true }))]),
      keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
      markdown(),
      syntaxHighlighting(markdownStyle),
      EditorView.lineWrapping,
      proseTheme,
      placeholder(readOnly ? 'This document is empty.' : 'Start writing…'),
      EditorState.readOnly.of(readOnly),
      // stays focusable when read-only: keyboard users select text to comment on; readOnly blocks input
      EditorView.contentAttributes.of({
        'aria-label': readOnly ? 'Document text (view only)' : 'Document text',
        'aria-multiline': 'true',
        'aria-readonly': readOnly ? 'true' : 'false',
        id: 'editor-text',
        tabindex: '0'
      }),
      yCollab(ytext, awareness, { undoManager })
    ]
  })
  return new EditorView({ state, parent })
}
