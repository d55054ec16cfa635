import createError from '@fastify/error'

// Every error this plugin raises, in one family. Messages name the fix, not just the problem.

export const FST_SSE_INVALID_OPTION = createError(
  'FST_SSE_INVALID_OPTION',
  'Invalid fastify-sse-stream option %s: %s',
  500,
  TypeError
)

export const FST_SSE_INVALID_ID = createError(
  'FST_SSE_INVALID_ID',
  'An SSE event id must be a string or finite number without CR, LF or NUL (they would inject fields); got %s',
  500,
  TypeError
)

export const FST_SSE_INVALID_EVENT = createError(
  'FST_SSE_INVALID_EVENT',
  'An SSE event name must be a string without CR or LF (they would inject fields); got %s',
  500,
  TypeError
)

export const FST_SSE_INVALID_RETRY = createError(
  'FST_SSE_INVALID_RETRY',
  'An SSE retry must be a non-negative integer number of milliseconds; got %s',
  500,
  TypeError
)

export const FST_SSE_INVALID_COMMENT = createError(
  'FST_SSE_INVALID_COMMENT',
  'An SSE comment must be a string; got %s',
  500,
  TypeError
)

export const FST_SSE_SERIALIZE = createError(
  'FST_SSE_SERIALIZE',
  'Could not serialize SSE data: %s (yield a string, or a value your `serialize` option turns into one)',
  500,
  TypeError
)

export const FST_SSE_INVALID_SOURCE = createError(
  'FST_SSE_INVALID_SOURCE',
  'reply.sse() needs an AsyncIterable, an Iterable, or a function (ctx) returning one; got %s',
  500,
  TypeError
)

export const FST_SSE_NOT_ACCEPTABLE = createError(
  'FST_SSE_NOT_ACCEPTABLE',
  'This route answers with text/event-stream, which the Accept header refuses (%s)',
  406
)

export const FST_SSE_INVALID_HEADER = createError(
  'FST_SSE_INVALID_HEADER',
  'The stream cannot start: Node refuses the response header %s (%s). Remove it, or encode its value (RFC 8187, encodeURIComponent)',
  500,
  TypeError
)

export const FST_SSE_ALREADY_SENT = createError(
  'FST_SSE_ALREADY_SENT',
  'reply.sse() was called on a reply that was already sent; call it once, instead of reply.send()',
  500
)

export const FST_SSE_INVALID_CHANNEL = createError(
  'FST_SSE_INVALID_CHANNEL',
  'A channel name must be a non-empty string of at most 200 characters; got %s',
  500,
  TypeError
)

export const FST_SSE_BACKEND_UNAVAILABLE = createError(
  'FST_SSE_BACKEND_UNAVAILABLE',
  'The channel backend (Redis) is unavailable: %s. Nothing was stored or replayed; retry once Redis answers (check the redis option if it never does)',
  503
)

export const FST_SSE_PUBLISH_OUTCOME_UNKNOWN = createError(
  'FST_SSE_PUBLISH_OUTCOME_UNKNOWN',
  'The channel backend (Redis) did not answer the publish in time: %s. The event may or may not be stored; publish again with the same idempotencyKey to have it exactly once',
  503
)

export const FST_SSE_RESERVED_EVENT = createError(
  'FST_SSE_RESERVED_EVENT',
  'The event name %s is reserved for the plugin\'s own notices (lost events, the end of a resumable stream); publish under another name (or with publishData() for untrusted input)',
  500,
  TypeError
)

export const FST_SSE_INVALID_IDEMPOTENCY_KEY = createError(
  'FST_SSE_INVALID_IDEMPOTENCY_KEY',
  'An idempotencyKey must be a non-empty string of at most 200 characters; got %s',
  500,
  TypeError
)

export const FST_SSE_CHANNELS_CLOSED = createError(
  'FST_SSE_CHANNELS_CLOSED',
  'Channels are closed because the Fastify instance is closing; publish before app.close()',
  503
)

export const FST_SSE_LIMIT_REACHED = createError(
  'FST_SSE_LIMIT_REACHED',
  'The stream was refused: %s. Retry after %d seconds (the Retry-After header)',
  429
)

export const FST_SSE_INVALID_EVENTS = createError(
  'FST_SSE_INVALID_EVENTS',
  'Invalid declaration of SSE events: %s',
  500,
  TypeError
)

export const FST_SSE_UNDECLARED_EVENT = createError(
  'FST_SSE_UNDECLARED_EVENT',
  'The event %s is not declared for this stream or channel (declared: %s); declare it in sseEvents()',
  500,
  TypeError
)

export const FST_SSE_INVALID_DATA = createError(
  'FST_SSE_INVALID_DATA',
  'The data of the event %s does not match its declared schema: %s',
  500,
  TypeError
)

export const FST_SSE_INVALID_STREAM_KEY = createError(
  'FST_SSE_INVALID_STREAM_KEY',
  'A resumable stream key must be a non-empty string of at most 150 characters; got %s',
  400,
  TypeError
)

export const FST_SSE_STREAM_EXISTS = createError(
  'FST_SSE_STREAM_EXISTS',
  'A resumable stream %s exists already (running, or over and kept for its ttl): attach to it with reply.sseResume(key); keys are used once',
  409
)

export const FST_SSE_UNKNOWN_STREAM = createError(
  'FST_SSE_UNKNOWN_STREAM',
  'No resumable stream %s: it never started, or its record expired',
  404
)
