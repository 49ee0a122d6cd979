// Who is using the page: /api/me when the server has a secret, a name asked once and kept in
// localStorage in local mode; and the colour their cursor and presence get.
import { askText } from './ui.js'

const NAME_KEY = 'cocreate.name'
const LOCAL_ID_KEY = 'cocreate.localId'
const PALETTE = ['#c2410c', '#1d4ed8', '#15803d', '#7e22ce', '#be123c', '#0f766e', '#a16207', '#4338ca', '#9d174d', '#166534']

export function colorFor (seed) {
  let hash = 0
  for (const char of String(seed)) hash = (hash * 31 + char.codePointAt(0)) >>> 0
  return PALETTE[hash % PALETTE.length]
}

/** A translucent version of `color` for selections (what y-codemirror.next calls colorLight). */
export function lightColor (color) {
  return color + '33'
}

function localBrowserId () {
  let id = localStorage.getItem(LOCAL_ID_KEY)
  if (!id) {
    id = Math.random().toString(36).slice(2, 10)
    localStorage.setItem(LOCAL_ID_KEY, id)
  }
  return id
}

export function storedName () {
  return localStorage.getItem(NAME_KEY) || ''
}

export async function askName (current = storedName()) {
  const name = await askText({
    title: 'Your name',
    label: 'The name others see beside your cursor and comments',
    value: current,
    submit: 'Continue',
    cancellable: Boolean(current)
  })
  if (name) localStorage.setItem(NAME_KEY, name)
  return name || current
}

/** `{id, name, color}` for presence and comments. */
export async function userFrom (me) {
  if (me.local) {
    const name = storedName() || (await askName(''))
    const seed = localBrowserId()
    return { id: me.user, name, color: colorFor(seed + name) }
  }
  return { id: me.user, name: me.name || me.user, color: colorFor(me.user) }
}
