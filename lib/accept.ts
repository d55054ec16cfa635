// RFC 9110 §12.5.1 content negotiation, narrowed to the one question this plugin asks:
// does this Accept header allow text/event-stream? The most specific matching range decides
// (text/event-stream over text/* over */*), and q=0 means "not acceptable".

const SPECIFICITY: Record<string, number> = { 'text/event-stream': 3, 'text/*': 2, '*/*': 1 }

// RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ). Number() alone would
// read '', '-0', '0x0' or '0e5' as a weight of 0 and refuse the stream on a malformed header.
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/** The weight (`q=`) among a range's parameters: 1 when absent or malformed. Also read for Accept-Encoding. */
export function qualityOf (params: string[]): number {
  for (const param of params) {
    const eq = param.indexOf('=')
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue
    const q = param.slice(eq + 1).trim()
    // A malformed weight is ignored rather than trusted, as if the range had none.
    return QVALUE.test(q) ? Number(q) : 1
  }
  return 1
}

/** True when the header is absent or empty, or its best-matching range has q > 0. */
export function acceptsEventStream (accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true
  let specificity = 0
  let quality = 0
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';')
    const rank = SPECIFICITY[type.trim().toLowerCase()]
    if (rank === undefined || rank < specificity) continue
    const q = qualityOf(params)
    // Equal specificity (a repeated range): the more generous weight wins.
    quality = rank > specificity ? q : Math.max(quality, q)
    specificity = rank
  }
  return quality > 0
}
