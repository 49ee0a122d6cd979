// Comment anchors (Yjs relative positions, base64) and their highlights in the CodeMirror editor.
import * as Y from 'yjs'
import { toBase64, fromBase64 } from 'lib0/buffer'
import { StateEffect, StateField, RangeSetBuilder } from '@codemirror/state'
import { Decoration, EditorView } from '@codemirror/view'

/** The anchor of [from, to) as the server recommends: start assoc 0, end assoc -1 (kept byte for byte). */
export function anchorOf (ytext, from, to) {
  const start = Y.createRelativePositionFromTypeIndex(ytext, from, 0)
  const end = Y.createRelativePositionFromTypeIndex(ytext, to, -1)
  return { start: toBase64(Y.encodeRelativePosition(start)), end: toBase64(Y.encodeRelativePosition(end)) }
}

/** Decode a base64 position (standard or URL-safe), or null when malformed. */
function decodePosition (text) {
  try {
    const normal = text.replaceAll('-', '+').replaceAll('_', '/')
    return Y.decodeRelativePosition(fromBase64(normal + '='.repeat((4 - normal.length % 4) % 4)))
  } catch {
    return null
  }
}

/**
 * Where an anchor is now in the local document: {from, to} (UTF-16, the editor's unit), or
 * null when this replica does not know its characters yet. from === to: its text is gone.
 */
export function locate (ydoc, ytext, anchor, cache) {
  if (!anchor) return null
  let decoded = cache.get(anchor.start + '|' + anchor.end)
  if (!decoded) {
    decoded = { start: decodePosition(anchor.start), end: decodePosition(anchor.end) }
    cache.set(anchor.start + '|' + anchor.end, decoded)
  }
  if (!decoded.start || !decoded.end) return null
  const start = Y.createAbsolutePositionFromRelativePosition(decoded.start, ydoc)
  const end = Y.createAbsolutePositionFromRelativePosition(decoded.end, ydoc)
  if (!start || !end || start.type !== ytext || end.type !== ytext) return null
  return { from: start.index, to: Math.max(start.index, end.index) }
}

/** Replace the highlighted ranges: [{id, from, to, active}] */
export const setHighlights = StateEffect.define()

const highlightField = StateField.define({
  create: () => Decoration.none,
  update (decorations, tr) {
    let next = decorations.map(tr.changes)
    for (const effect of tr.effects) {
      if (effect.is(setHighlights)) next = buildDecorations(effect.value, tr.state.doc.length)
    }
    return next
  },
  provide: (field) => EditorView.decorations.from(field)
})

function buildDecorations (ranges, length) {
  const builder = new RangeSetBuilder()
  const sorted = ranges
    .filter((r) => r.from < r.to && r.to <= length)
    .sort((a, b) => a.from - b.from || a.to - b.to)
  for (const range of sorted) {
    const mark = Decoration.mark({
      class: range.active ? 'cmt-highlight cmt-highlight-active' : 'cmt-highlight',
      attributes: { 'data-thread': range.id },
      inclusiveStart: false,
      inclusiveEnd: false
    })
    builder.add(range.from, range.to, mark)
  }
  return builder.finish()
}

const highlightTheme = EditorView.baseTheme({
  '.cmt-highlight': { backgroundColor: 'rgba(255, 200, 0, 0.28)', borderBottom: '2px solid rgba(230, 160, 0, 0.9)' },
  '.cmt-highlight-active': { backgroundColor: 'rgba(255, 170, 0, 0.5)' }
})

/**
 * Install the highlight field in a live editor, and keep it on the anchors' characters: the
 * field maps ranges through each change at once, and after every Yjs change the ranges are
 * recomputed from the relative positions (next microtask: never inside an editor update).
 * Returns {refresh(), destroy()}; `ranges()` gives the current [{id, from, to, active}].
 */
export function installHighlights (view, ytext, ranges) {
  view.dispatch({ effects: StateEffect.appendConfig.of([highlightField, highlightTheme]) })
  let queued = false
  let alive = true
  const push = () => {
    queued = false
    if (!alive) return
    view.dispatch({ effects: setHighlights.of(ranges()) })
  }
  const refresh = () => {
    if (queued || !alive) return
    queued = true
    queueMicrotask(push)
  }
  const observer = () => refresh()
  ytext.observe(observer)
  refresh()
  return {
    refresh,
    destroy () {
      alive = false
      ytext.unobserve(observer)
      try {
        view.dispatch({ effects: setHighlights.of([]) })
      } catch {
        // the editor may already be destroyed
      }
    }
  }
}
