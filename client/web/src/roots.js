// The name of the Y.Text root every cocreate browser client edits. Comments (`root` of a thread),
// history, diff and restore address the document's text by this name: import it, never retype it.
export const CONTENT_ROOT = 'content'
