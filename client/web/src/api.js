// The HTTP API wrapper and the credentials it sends: a signed-in token (`#token=...`) and the
// per-document tokens that invite links give (`#invite=CODE`), both kept in localStorage.

const TOKEN_KEY = 'cocreate.token'
const DOC_TOKENS_KEY = 'cocreate.documentTokens'

export const ROLES = ['none', 'viewer', 'commenter', 'editor', 'owner']

export function rank (role) {
  const index = ROLES.indexOf(role)
  return index < 0 ? 0 : index
}

function readJSON (key, fallback) {
  try {
    const value = JSON.parse(localStorage.getItem(key) || 'null')
    return value ?? fallback
  } catch {
    return fallback
  }
}

export function signedInToken () {
  return localStorage.getItem(TOKEN_KEY) || ''
}

export function setSignedInToken (token) {
  if (token) localStorage.setItem(TOKEN_KEY, token)
  else localStorage.removeItem(TOKEN_KEY)
}

/** Documents reached through an invite: name -> token. */
export function documentTokens () {
  return readJSON(DOC_TOKENS_KEY, {})
}

export function setDocumentToken (docName, token) {
  const tokens = documentTokens()
  tokens[docName] = token
  localStorage.setItem(DOC_TOKENS_KEY, JSON.stringify(tokens))
}

export function forgetDocumentToken (docName) {
  const tokens = documentTokens()
  delete tokens[docName]
  localStorage.setItem(DOC_TOKENS_KEY, JSON.stringify(tokens))
}

/** The token to use on `docName`: the invite's own token if there is one, else the signed-in one. */
export function tokenFor (docName) {
  return (docName && documentTokens()[docName]) || signedInToken()
}

export class ApiError extends Error {
  constructor (status, body) {
    super((body && (body.detail || body.error)) || `HTTP ${status}`)
    this.status = status
    this.error = body && body.error
    this.detail = body && body.detail
    this.body = body
  }
}

/**
 * `api.get(path)`, `api.post(path, body)`, `api.patch`, `api.put`, `api.delete`: parsed JSON (null for
 * 204), or an `ApiError` (`.status`, `.error`, `.detail`, `.body` = the server's JSON error).
 */
export function createApi (token = '') {
  async function request (method, path, body) {
    const headers = { Accept: 'application/json' }
    if (token) headers.Authorization = `Bearer ${token}`
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    let response
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin'
      })
    } catch (exc) {
      throw new ApiError(0, { error: 'network', detail: 'the server cannot be reached' })
    }
    if (response.status === 204) return null
    const text = await response.text()
    let parsed = null
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {
      parsed = { error: 'bad_response', detail: text.slice(0, 200) }
    }
    if (!response.ok) throw new ApiError(response.status, parsed)
    return parsed
  }
  return {
    token,
    get: (path) => request('GET', path),
    post: (path, body = {}) => request('POST', path, body),
    patch: (path, body = {}) => request('PATCH', path, body),
    put: (path, body = {}) => request('PUT', path, body),
    delete: (path) => request('DELETE', path)
  }
}

/** `/api/documents/team%2Fnotes`-style paths keep each name segment escaped but the slashes. */
export function documentPath (docName, suffix = '') {
  return '/api/documents/' + docName.split('/').map(encodeURIComponent).join('/') + suffix
}

/** The role `me` (from /api/me) has on `docName`: the most specific grant, raised by access entries. */
export function roleOn (me, docName) {
  if (me.local) return 'owner'
  let best = null
  let role = 'none'
  for (const [pattern, granted] of Object.entries(me.grants || {})) {
    if (pattern === docName) {
      role = granted
      best = Infinity
      break
    }
    if (pattern.endsWith('*') && docName.startsWith(pattern.slice(0, -1))) {
      const specificity = pattern.length - 1
      if (best === null || specificity > best) {
        best = specificity
        role = granted
      }
    }
  }
  for (const entry of me.access || []) {
    if (entry.document === docName && rank(entry.role) > rank(role)) role = entry.role
  }
  return role
}
